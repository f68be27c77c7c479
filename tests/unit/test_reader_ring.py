"""A catch-up reader's replay ring (evgate/kafka/consumer_pool.py `Fanout._trim`): records go
in bulk, but by the same rules as one at a time: the record and memory bounds, never a record
a client still needs, and the bookkeeping (`ring_base`, `seq_by_cursor`) of what left."""
from __future__ import annotations

from evgate.core.stream import StreamItem
from evgate.kafka.consumer_pool import Fanout


def _ring(max_records: int, max_bytes: int, live: bool = False) -> Fanout:
    fanout = Fanout.__new__(Fanout)     # no consumer: only the ring is exercised
    fanout.live = live
    fanout.ring, fanout.ring_bytes, fanout.first_seq, fanout.head_seq = [], 0, 0, 0
    fanout.ring_base, fanout.seq_by_cursor, fanout.at_end, fanout.one = {}, {}, {}, None
    fanout.next_seq, fanout.idle_mark = {}, 0
    fanout.subscribers, fanout.stopped, fanout.position = set(), True, None
    fanout.max_records, fanout.max_bytes = max_records, max_bytes
    return fanout


def _fill(fanout: Fanout, count: int, size: int = 10) -> list[StreamItem]:
    items = []
    for n in range(count):
        key = ("t", n % 2)                       # two partitions, alternating
        items.append(StreamItem(None, f"c{n}", key, n // 2, size=size))
    head = fanout.head_seq
    fanout.ring.extend(items)
    fanout.ring_bytes += size * count
    fanout.seq_by_cursor.update((item.cursor, head + i) for i, item in enumerate(items))
    fanout.head_seq += count
    return items


def test_the_record_bound_drops_the_oldest_and_records_where_each_partition_was():
    fanout = _ring(max_records=4, max_bytes=1 << 20, live=True)
    items = _fill(fanout, 10)
    fanout._trim()
    assert fanout.ring == items[6:]
    assert (fanout.first_seq, fanout.ring_bytes) == (6, 40)
    # the last record dropped per partition: c4 (t@0#2) and c5 (t@1#2)
    assert fanout.ring_base == {("t", 0): 2, ("t", 1): 2}
    assert sorted(fanout.seq_by_cursor) == ["c6", "c7", "c8", "c9"]
    assert fanout.seq_by_cursor["c6"] == 6


def test_the_memory_bound_drops_as_many_records_as_it_takes():
    fanout = _ring(max_records=100, max_bytes=35, live=True)
    items = _fill(fanout, 8)                      # 80 bytes: 5 must go
    fanout._trim()
    assert fanout.ring == items[5:] and fanout.ring_bytes == 30 and fanout.first_seq == 5


def test_a_record_a_client_still_needs_stays_past_the_bounds():
    fanout = _ring(max_records=2, max_bytes=15)
    items = _fill(fanout, 10)
    client = object()
    fanout.next_seq[client] = 3                   # it has not been handed record 3 yet
    fanout._trim()
    assert fanout.ring == items[3:] and fanout.first_seq == 3
    assert fanout.ring_bytes == 70
    del fanout.next_seq[client]
    fanout.idle_mark = 1                          # no client: keep where the next one starts
    fanout._trim()
    assert fanout.first_seq == 3                  # never below what was already dropped
    fanout.idle_mark = 9
    fanout._trim()
    assert fanout.ring == items[9:] and fanout.first_seq == 9 and fanout.ring_bytes == 10


def test_nothing_moves_within_the_bounds():
    fanout = _ring(max_records=10, max_bytes=1000, live=True)
    items = _fill(fanout, 10)
    fanout._trim()
    assert fanout.ring == items and fanout.first_seq == 0 and fanout.ring_base == {}


class _Record:
    """What a confluent-kafka Message answers that the reader's thread reads."""

    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None = b"v"):
        self._topic, self._partition, self._offset, self._value = topic, partition, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, -1)              # TIMESTAMP_NOT_AVAILABLE


def test_a_readers_cursors_are_what_cursors_encode_writes():
    """The reader's thread writes each record's cursor itself (one partition: its part alone;
    several: the parts kept per partition): the same text as `cursors.encode` of the position
    after the record, a partition that shows up later included."""
    from evgate.kafka import cursor as cursors
    from evgate.kafka.consumer import KafkaConsumerBridge
    bridge = KafkaConsumerBridge.__new__(KafkaConsumerBridge)   # no consumer, no thread
    bridge.position, bridge._parts, bridge._slots = {("a", 0): 4}, None, {}
    items, _ = bridge._items([_Record("a", 0, 5), _Record("a", 0, 6, None),
                              _Record("a", 0, 7)], True)
    assert [item.cursor for item in items] == [cursors.encode({("a", 0): n}) for n in (5, 6, 7)]
    assert [item.size for item in items] == [1, 0, 1]
    items, _ = bridge._items([_Record("a", 1, 3), _Record("a", 0, 8), _Record("b", 0, 1)], True)
    assert [item.cursor for item in items] == [cursors.encode(p) for p in (
        {("a", 0): 7, ("a", 1): 3}, {("a", 0): 8, ("a", 1): 3},
        {("a", 0): 8, ("a", 1): 3, ("b", 0): 1})]
    items, _ = bridge._items([_Record("a", 1, 4)], True)
    assert items[0].cursor == cursors.encode({("a", 0): 8, ("a", 1): 4, ("b", 0): 1})
    assert items[0].partition_key == ("a", 1) and items[0].offset == 4


def test_pages_of_a_readers_records_say_what_json_dumps_would():
    """A reader's records (value and cursor read from the Kafka record, the message built
    only when a record needs it) make the same JSON page on the one-join path and on the
    per-record one: tombstones, quotes, backslashes, controls and non-ASCII included."""
    import json

    from evgate.entrypoints.http_get import HttpGetEntrypoint
    from evgate.kafka.consumer import KafkaConsumerBridge
    entrypoint = HttpGetEntrypoint.__new__(HttpGetEntrypoint)
    entrypoint.headers_in_payload = entrypoint.metadata_in_payload = False
    bridge = KafkaConsumerBridge.__new__(KafkaConsumerBridge)
    bridge.position, bridge._parts, bridge._slots = {("a", 0): -1}, None, {}
    offset = 0
    for odd in (None, b'say "hi"', b"a\\b", b"tab\there", "\u00e9".encode(), b"\x7f", b"ok!"):
        values = [b"plain %d" % offset, odd, b"plain"]
        records = [_Record("a", 0, offset + i, value) for i, value in enumerate(values)]
        offset += len(values)
        items, _ = bridge._items(records, True)
        body = json.loads(entrypoint._json_page(items, items[-1].cursor, 10).get_data())
        assert body["items"] == [
            {"id": item.cursor, "content": None, "deleted": True} if value is None else
            {"id": item.cursor, "content": value.decode("utf-8", errors="replace")}
            for item, value in zip(items, values)], odd


class _Event(_Record):
    """An event record (a partition's end) in a batch: an error, no value."""

    def __init__(self, topic: str, partition: int, code: int):
        super().__init__(topic, partition, -1001, None)
        self._code = code

    def error(self):
        from confluent_kafka import KafkaError
        return KafkaError(self._code)


def test_a_one_partition_batch_skips_events_and_keeps_each_records_value():
    """The one-partition path (whole-batch calls): a partition's end is reported and is no
    item, a tombstone's content is None, each item's content is the record's own bytes (not a
    copy: the ring counts it once), the position moves to the batch's last record."""
    from confluent_kafka import KafkaError

    from evgate.kafka import cursor as cursors
    from evgate.kafka.consumer import KafkaConsumerBridge
    bridge = KafkaConsumerBridge.__new__(KafkaConsumerBridge)
    bridge.position, bridge._parts, bridge._slots = {("a", 2): 98}, None, {}
    records = [_Record("a", 2, 99, b"x" * 7), _Record("a", 2, 100, None),
               _Record("a", 2, 101, b"yz"), _Event("a", 2, KafkaError._PARTITION_EOF)]
    items, eof = bridge._items(records, True)
    assert eof == {("a", 2)}
    assert [item.offset for item in items] == [99, 100, 101]
    assert [item.cursor for item in items] == [cursors.encode({("a", 2): n})
                                               for n in (99, 100, 101)]
    assert [item.size for item in items] == [7, 0, 2]
    assert items[0].content is records[0].value() and items[1].content is None
    assert items[1].message.tombstone and items[2].message.content == b"yz"
    assert bridge.position == {("a", 2): 101}
    items, eof = bridge._items([_Event("a", 2, KafkaError._PARTITION_EOF)], False)
    assert (items, eof) == ([], set())


def _one_partition_ring(max_records: int) -> Fanout:
    fanout = _ring(max_records=max_records, max_bytes=1 << 20)
    fanout.one = ("t", 0)
    return fanout


def _batch(offsets: list[int]) -> list[StreamItem]:
    from evgate.kafka import cursor as cursors
    return [StreamItem(None, cursors.encode({("t", 0): o}), ("t", 0), o, size=10)
            for o in offsets]


def test_a_one_partition_ring_finds_records_by_offset_without_a_dict():
    """One partition: no cursor dict entry per record; a record is found by its offset in the
    ring (gaps in the offsets, e.g. transaction markers, included) until it leaves the ring,
    and a position the ring does not hold is no record."""
    from evgate.kafka import cursor as cursors
    fanout = _one_partition_ring(max_records=4)
    offsets = [3, 4, 6, 7, 10, 11, 12]
    fanout.on_batch(_batch(offsets[:3]), {("t", 0): 6}, None)
    fanout.on_batch(_batch(offsets[3:]), {("t", 0): 12}, None)
    assert fanout.seq_by_cursor == {}
    assert fanout.first_seq == 0 and len(fanout.ring) == 7    # no client read it: kept
    assert [fanout.seq_of({("t", 0): o}) for o in offsets] == list(range(7))
    assert fanout.seq_of({("t", 0): 5}) is None and fanout.seq_of({("t", 0): 13}) is None
    assert fanout.seq_of({("t", 0): 2}) is None
    fanout.idle_mark = 5                        # the next client starts after offset 10
    fanout._trim()
    assert fanout.first_seq == 3 and fanout.ring_base == {("t", 0): 6}
    assert fanout.seq_of({("t", 0): 6}) is None                # dropped
    assert [fanout.seq_of({("t", 0): o}) for o in (7, 10, 12)] == [3, 4, 6]
    assert fanout._seq_of_cursor(cursors.encode({("t", 0): 10})) == 4
    assert fanout._seq_of_cursor("t@0#11") == 5                # the plain form too
    assert fanout._seq_of_cursor("not a cursor!") is None
    assert fanout._seq_of_cursor(None) is None


def test_a_one_partition_ring_whose_offsets_go_back_is_indexed_by_cursor():
    """A log truncated and read again (an offset reset) brings offsets the ring already
    holds: the bisection would find the older copy, so the ring indexes by cursor from then
    on and a cursor read twice maps to its newest place (as on several partitions)."""
    fanout = _one_partition_ring(max_records=100)
    fanout.on_batch(_batch([5, 6, 7, 8]), {("t", 0): 8}, None)
    assert fanout.seq_by_cursor == {}
    fanout.on_batch(_batch([6, 7, 8, 9]), {("t", 0): 9}, None)
    assert fanout.one is None
    assert [fanout.seq_of({("t", 0): o}) for o in (5, 6, 7, 8, 9)] == [0, 4, 5, 6, 7]
    fanout.idle_mark = 2
    fanout._trim()
    fanout.max_records = 3
    fanout.idle_mark = 5
    fanout._trim()
    assert fanout.first_seq == 5
    assert fanout.seq_of({("t", 0): 6}) is None and fanout.seq_of({("t", 0): 8}) == 6
