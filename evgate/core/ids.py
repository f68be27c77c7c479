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
