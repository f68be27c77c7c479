"""Cursors: where a client is in a set of Kafka partitions, as one opaque string.

A cursor lists, for every partition a client reads, the offset of the LAST record it was given
(Gravitee's `topic@partition#offset` pairs, comma separated, partitions sorted). A partition
the client has not received anything from yet carries the offset just before the position it
started at (so `-1` means "from the beginning"). Resuming from a cursor therefore starts each
partition at `offset + 1`: no gap, no repeat.

On the wire (SSE `id:` / `Last-Event-ID`, WebSocket, http-get `cursor` / `nextCursor`, logs)
the text is base64url-encoded without padding, so it is safe in headers and query strings:

    demo@0#41,demo@1#17   ->   ZGVtb0AwIzQxLGRlbW9AMSMxNw

`parse` accepts both the encoded and the plain form. Anything else raises CursorError (the
entrypoints answer 400). See docs/consumption.md.
"""
from __future__ import annotations

import base64
import binascii
import re
from itertools import groupby
from typing import Iterable, Mapping

Position = dict[tuple[str, int], int]
"""(topic, partition) -> offset of the last record delivered (start - 1 before any)."""

_PAIR = re.compile(r"^(?P<topic>[A-Za-z0-9._-]{1,249})@(?P<partition>\d{1,6})#(?P<offset>-?\d{1,19})$")
MAX_CURSOR_LENGTH = 65536


class CursorError(ValueError):
    """A cursor that is not one evgate wrote."""


def to_text(position: Mapping[tuple[str, int], int]) -> str:
    """The plain form: `topic@partition#offset` pairs, sorted, comma separated."""
    return ",".join(f"{topic}@{partition}#{offset}"
                    for (topic, partition), offset in sorted(position.items()))


def encode(position: Mapping[tuple[str, int], int]) -> str:
    raw = to_text(position).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# standard base64 to base64url (`translate` of b2a_base64 output: a cursor's alphabet)
URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode_offsets(topic: str, partition: int, offsets: list[int]) -> list[str]:
    """`encode({(topic, partition): offset})` for each offset (increasing: a one-partition
    reader's batch), in a few C calls for the whole batch instead of ~1 us of f-string and
    base64 calls per record (the reader's thread holds the GIL for them). Base64 encodes
    each 3-byte group on its own, so texts padded with NULs to a multiple of 3 bytes encode
    as one buffer; each cursor is its slice, less the characters that stand for the NULs
    (what the padding `=` replaces, stripped as `encode` strips it)."""
    if not offsets:
        return []
    prefix = f"{topic}@{partition}#".encode()
    digits = len(str(min(offsets)))
    if len(str(max(offsets))) != digits:
        # the batch crosses a power of ten: one run per digit count (rare)
        out: list[str] = []
        for _, run in groupby(offsets, lambda offset: len(str(offset))):
            out += encode_offsets(topic, partition, list(run))
        return out
    length = len(prefix) + digits
    pad = -length % 3
    fill = b"\0" * pad
    joined = (prefix.replace(b"%", b"%%") + b"%d" + fill) * len(offsets) % tuple(offsets)
    text = binascii.b2a_base64(joined, newline=False).translate(URLSAFE).decode("ascii")
    width = (length + pad) // 3 * 4
    keep = width - pad
    return [text[start:start + keep] for start in range(0, len(text), width)]


def parse(text: str, topics: Iterable[str] | None = None) -> Position:
    """Decode a cursor (encoded or plain); `topics` limits which topics it may name."""
    if not isinstance(text, str) or not text.strip():
        raise CursorError("the cursor is empty")
    text = text.strip()
    if len(text) > MAX_CURSOR_LENGTH:
        raise CursorError("the cursor is too long")
    plain = text if "@" in text else _b64decode(text)
    position: Position = {}
    for pair in plain.split(","):
        match = _PAIR.match(pair.strip())
        if match is None:
            raise CursorError(f"the cursor part {pair.strip()[:60]!r} is not topic@partition#offset")
        key = (match["topic"], int(match["partition"]))
        offset = int(match["offset"])
        if offset < -1:
            raise CursorError(f"the cursor offset {offset} of {key[0]}@{key[1]} is negative")
        if key in position:
            raise CursorError(f"the cursor names {key[0]}@{key[1]} twice")
        position[key] = offset
    if topics is not None:
        allowed = set(topics)
        unknown = sorted({topic for topic, _ in position} - allowed)
        if unknown:
            raise CursorError(f"the cursor names topic(s) this API does not read: "
                              f"{', '.join(unknown)}")
    return position


def _b64decode(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise CursorError("the cursor is neither base64url nor topic@partition#offset pairs")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("the cursor is not valid base64url") from None


def covers(position: Mapping[tuple[str, int], int],
           other: Mapping[tuple[str, int], int]) -> bool:
    """True when `position` is at or past `other` on every partition of `other`."""
    return all(position.get(key, -2) >= offset for key, offset in other.items())
