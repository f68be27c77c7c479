"""Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015): attempt n waits uniform(0, min(max, base * 2**n)). Full jitter spreads the
retries of many subscriptions hitting one recovering receiver, instead of synchronised waves.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    max_s: float = 30.0
    #: Total attempts before a record counts as undeliverable; 0 = retry forever.
    max_attempts: int = 0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the wait after the `attempt`-th failure (attempt >= 1)."""
        exponent = min(max(attempt - 1, 0), 62)  # 2**62 * base overflows nothing, caps below
        return min(self.max_s, self.base_s * (2 ** exponent))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, self.ceiling(attempt))

    def exhausted(self, attempts: int) -> bool:
        return self.max_attempts > 0 and attempts >= self.max_attempts
