"""The in-memory request limits of one process (see `core.auth.ratelimit`), built from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from api.proxies import TrustedProxies
from api.settings import Settings
from core.auth.ratelimit import FailureThrottle, KeyedBuckets
from core.clock import Clock


@dataclass
class Limits:
    proxies: TrustedProxies
    rest_keys: KeyedBuckets  # requests per REST API key
    rest_bad_keys: FailureThrottle  # wrong X-Api-Key tries per client address

    @classmethod
    def build(cls, settings: Settings, clock: Clock) -> Limits:
        rest = settings.channels.rest
        return cls(
            proxies=TrustedProxies(settings.trusted_proxies),
            rest_keys=KeyedBuckets(rest.request_burst, rest.requests_per_second, clock.monotonic, max_keys=1000),
            rest_bad_keys=FailureThrottle(free=rest.bad_key_free_failures, base=rest.bad_key_delay_seconds,
                                          cap=rest.bad_key_max_delay_seconds, window=rest.bad_key_window_seconds,
                                          clock=clock.monotonic),
        )
