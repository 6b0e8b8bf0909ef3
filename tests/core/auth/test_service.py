"""The sign-in throttle's counting rules, on both databases, with a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import service
from core.auth.errors import LoginThrottledError
from core.auth.models import LoginThrottle, ThrottleScope
from core.auth.ratelimit import FailureThrottle, KeyedBuckets, backoff_seconds
from core.auth.settings import LoginProtectionSettings
from core.clock import ManualClock

POLICY = LoginProtectionSettings(account_free_failures=2, account_lock_failures=50, address_free_failures=40,
                                 failure_window_minutes=60)


async def rows(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], int]:
    async with sessionmaker() as session:
        return {(r.scope.value, r.key): r.failures for r in (await session.scalars(select(LoginThrottle))).all()}


async def test_concurrent_failures_are_all_counted(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Failures counted at once by many workers meet on the row lock: none is lost, none fails on the key."""
    clock = ManualClock()

    async def fail(i: int) -> None:
        async with sessionmaker() as session, session.begin():
            await service.record_failure(session, POLICY, " Agent@Test.Example ", f"192.0.2.{i % 2}", clock.now())

    await asyncio.gather(*(fail(i) for i in range(12)))
    assert await rows(sessionmaker) == {("account", "agent@test.example"): 12, ("address", "192.0.2.0"): 6,
                                        ("address", "192.0.2.1"): 6}


async def test_failures_are_forgotten_after_the_window(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    for _ in range(3):
        async with sessionmaker() as session, session.begin():
            await service.record_failure(session, POLICY, "a@test.example", "192.0.2.1", clock.now())
    async with sessionmaker() as session:
        with pytest.raises(LoginThrottledError):
            await service.check(session, POLICY, "a@test.example", "192.0.2.2", clock.now())
    clock.advance(61 * 60)
    async with sessionmaker() as session, session.begin():
        await service.check(session, POLICY, "a@test.example", "192.0.2.2", clock.now())  # the wait is over
        await service.record_failure(session, POLICY, "b@test.example", "192.0.2.1", clock.now())
    # The old streak's rows are gone (purged), the new failure counts from one.
    assert await rows(sessionmaker) == {("account", "b@test.example"): 1, ("address", "192.0.2.1"): 1}


async def test_a_disabled_policy_counts_nothing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    policy = LoginProtectionSettings(enabled=False)
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        for _ in range(30):
            await service.record_failure(session, policy, "a@test.example", "192.0.2.1", clock.now())
        await service.check(session, policy, "a@test.example", "192.0.2.1", clock.now())
    assert await rows(sessionmaker) == {}
    assert ThrottleScope.account.value == "account"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, 1.0, 60.0) for n in range(0, 9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_seconds(10_000, 1.0, 60.0) == 60.0


def test_token_buckets_refill_with_the_clock_and_stay_bounded() -> None:
    clock = ManualClock()
    buckets = KeyedBuckets(burst=3, rate=2.0, clock=clock.monotonic, max_keys=2)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)
    clock.advance(0.5)
    assert buckets.take("k") == 0.0
    buckets.take("a")
    buckets.take("b")  # past max_keys: the oldest key ("k") is dropped and starts over full
    assert len(buckets._buckets) == 2 and "k" not in buckets._buckets
    assert KeyedBuckets(burst=1, rate=0, clock=clock.monotonic).take("x") == 0.0  # rate 0: no limit


def test_failure_throttle_waits_grow_and_are_forgotten() -> None:
    clock = ManualClock()
    throttle = FailureThrottle(free=2, base=1.0, cap=8.0, window=100.0, clock=clock.monotonic)
    assert [throttle.failure("a") for _ in range(6)] == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    assert throttle.blocked("a") == 8.0 and throttle.blocked("b") == 0.0
    clock.advance(8)
    assert throttle.blocked("a") == 0.0
    clock.advance(101)
    assert throttle.failure("a") == 0.0  # forgotten: a fresh streak
    throttle.success("a")
    assert throttle.blocked("a") == 0.0
