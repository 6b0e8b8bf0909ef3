"""The one backoff every job and retry uses: exponential, capped, with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """`initial` seconds after the first failure in a row, doubling up to `maximum`.

    Equal jitter: the wait is somewhere in the upper half of that, so many instances (or many mailboxes of one
    server) failing together do not come back in lockstep, and no wait is ever shorter than half the step.
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")

    def step(self, failures: int) -> float:
        """The un-jittered wait after `failures` failures in a row (1 for the first)."""
        exponent = max(0, failures - 1)
        # Past ~60 doublings the float overflows long after the cap: stop multiplying once it is reached.
        if exponent > 64:
            return self.maximum
        return min(self.maximum, self.initial * self.factor ** exponent)

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after `failures` failures in a row."""
        step = self.step(failures)
        return step / 2 + rng() * step / 2
