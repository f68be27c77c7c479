"""Random (version 4) UUID strings for transaction and message ids, cheaply.

`str(uuid.uuid4())` reads 16 bytes from the kernel per call (a getrandom syscall, ~3 us);
batch ingestion makes one id per record, so that cost showed up in bench/ingest.py's profile.
These ids only need to be unique, not secret: the `random` module's generator (reseeded in
every forked worker by CPython's own at-fork hook) gives the same format for ~0.5 us.
"""
from __future__ import annotations

import random

_VERSION_4 = 0x4000 << 64          # version nibble 4 in time_hi_and_version
_VARIANT_RFC = 0x8000 << 48         # variant bits 10 in clock_seq_hi_and_reserved
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


def new_id(_bits=random.getrandbits) -> str:
    """A random UUID string like `str(uuid.uuid4())` (8-4-4-4-12 lowercase hex)."""
    text = "%032x" % ((_bits(128) & _CLEAR) | _VERSION_4 | _VARIANT_RFC)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_MASKS: dict[int, tuple[int, int]] = {}
#: where each of an id's 32 hex digits goes in its 36 characters (after the dashes)
_LAYOUT = [out for out in range(36) if out not in (8, 13, 18, 23)]


#: from this count on, one draw for all ids is cheaper than `new_id` per id: the 32 strided
#: copies cost ~17 us whatever the count (one id that way took 18 us, `new_id` 1.5 us: every
#: single-record POST paid it, bench/ingest.py's profile)
BATCH_FROM = 16


def new_ids(count: int, _bits=random.getrandbits) -> list[str]:
    """`count` ids as `new_id` makes them; for a batch (batch ingestion keys each record: one
    by one cost ~2 us each in bench/ingest.py's profile) from one draw of random bits, one hex
    conversion and 32 strided copies."""
    if count < BATCH_FROM:
        return [new_id() for _ in range(count)]
    masks = _MASKS.get(count)
    if masks is None:
        clear = set_ = 0
        for _ in range(count):
            clear = (clear << 128) | (_CLEAR & ((1 << 128) - 1))
            set_ = (set_ << 128) | _VERSION_4 | _VARIANT_RFC
        masks = (clear, set_)
        if len(_MASKS) < 64:
            _MASKS[count] = masks
    digits = ((_bits(128 * count) & masks[0]) | masks[1]).to_bytes(16 * count, "big").hex()
    source = digits.encode("ascii")
    text = bytearray(b"-" * (36 * count))
    for position, out in enumerate(_LAYOUT):
        text[out::36] = source[position::32]
    joined = text.decode("ascii")
    return [joined[i:i + 36] for i in range(0, 36 * count, 36)]
