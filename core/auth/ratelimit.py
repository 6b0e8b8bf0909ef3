"""In-memory limits for the hot paths: token buckets and a failure throttle, each keyed and bounded.

They live in one process: with N workers or instances each keeps its own count, so a limit of R per second is
R per second per process. That is the price of an O(1) check that never touches the database (the REST channel
carries over a thousand messages a second); sign-in failures, which must hold across processes, are counted
in the database instead (`core.auth.service`).
"""

from __future__ import annotations

from collections.abc import Callable

MonotonicClock = Callable[[], float]
DEFAULT_MAX_KEYS = 100_000


class TokenBucket:
    """Allows `burst` events at once and `rate` per second on average."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, burst: float, rate: float, clock: MonotonicClock) -> None:
        self.burst, self.rate, self.clock = float(burst), rate, clock
        self.tokens, self.stamp = float(burst), clock()

    def take(self) -> float:
        """0.0 when allowed (one token spent), else the seconds until a token is there."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class KeyedBuckets:
    """One token bucket per key (an address, an API key); `rate` 0 switches the limit off.

    At most `max_keys` buckets are kept: past that the oldest is dropped, so a flood of new keys costs bounded
    memory (a dropped key starts again with a full bucket).
    """

    def __init__(self, burst: float, rate: float, clock: MonotonicClock, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.burst, self.rate, self.clock, self.max_keys = burst, rate, clock, max_keys
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = TokenBucket(self.burst, self.rate, self.clock)
        return bucket.take()


def backoff_seconds(excess: int, base: float, cap: float) -> float:
    """The delay after the `excess`-th failure past the free ones: base, 2*base, 4*base ... up to cap."""
    if excess <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(excess - 1, 62)))


class FailureThrottle:
    """Counts failures per key (wrong API keys per address); past `free` of them each further failure makes
    the key wait an exponentially growing time (`base` doubling up to `cap`) before it may try again.

    Failures are forgotten `window` seconds after the last one; `free` 0 switches the throttle off.
    """

    __slots__ = ("_entries", "base", "cap", "clock", "free", "max_keys", "window")

    def __init__(self, *, free: int, base: float, cap: float, window: float, clock: MonotonicClock,
                 max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.free, self.base, self.cap, self.window, self.clock = free, base, cap, window, clock
        self.max_keys = max_keys
        # key -> [failures, last failure, blocked until]
        self._entries: dict[str, list[float]] = {}

    def blocked(self, key: str) -> float:
        """0.0 when the key may try, else the seconds to wait."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        wait = entry[2] - self.clock()
        return wait if wait > 0 else 0.0

    def failure(self, key: str) -> float:
        """Count a failure; returns the wait it brings (0.0 while within the free ones)."""
        if self.free <= 0:
            return 0.0
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > self.window:
            if entry is None and len(self._entries) >= self.max_keys:
                del self._entries[next(iter(self._entries))]
            entry = self._entries[key] = [0.0, now, 0.0]
        entry[0] += 1
        entry[1] = now
        wait = backoff_seconds(int(entry[0]) - self.free, self.base, self.cap)
        entry[2] = now + wait
        return wait

    def success(self, key: str) -> None:
        self._entries.pop(key, None)
