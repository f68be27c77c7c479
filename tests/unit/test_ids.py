"""Message ids: `new_ids` (one draw for a batch) makes the same ids as `new_id`, one by one."""
from __future__ import annotations

import random
import re
import uuid

import pytest

from evgate.core.ids import BATCH_FROM, new_id, new_ids

_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.mark.parametrize("count", [1, 2, 3, BATCH_FROM - 1, BATCH_FROM, 17, 1000])
def test_new_ids_are_distinct_version_4_uuid_strings(count):
    ids = new_ids(count)
    assert len(ids) == count and len(set(ids)) == count
    for value in ids:
        assert _UUID4.fullmatch(value), value
        assert str(uuid.UUID(value)) == value and uuid.UUID(value).version == 4


def test_new_ids_are_new_id_from_the_same_random_bits():
    """Same generator state, same ids: the strided layout puts every digit where `new_id`'s
    formatting does (the bits of the first id are the draw's most significant ones)."""
    count = BATCH_FROM + 3
    state = random.getstate()
    try:
        random.seed(1234)
        draw = random.getrandbits(128 * count)
        random.seed(1234)
        batch = new_ids(count)
    finally:
        random.setstate(state)
    expected = [new_id(lambda _bits, part=part: part) for part in
                ((draw >> (128 * (count - 1 - i))) & ((1 << 128) - 1) for i in range(count))]
    assert batch == expected


def test_new_ids_draw_every_variant_digit():
    assert {value[19] for value in new_ids(2000)} == set("89ab")
    assert {value[19] for _ in range(200) for value in new_ids(2)} == set("89ab")
    assert new_ids(0) == [] and new_ids(-1) == []
