"""The job registry on a manual clock: schedules, backoff, leases, wakes, health and stopping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest

from core.clock import ManualClock
from core.db.lease import Lease, LeaseLost
from core.events import EventBus
from core.jobs import Backoff, DailyAt, Every, Job, JobContext, JobRegistry, parse_schedule
from tests.support.waiting import until

START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


class Counter:
    def __init__(self, failures: int = 0) -> None:
        self.calls = 0
        self.failures = failures

    async def __call__(self, ctx: JobContext) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")
        return False


async def asleep(clock: ManualClock, count: int = 1) -> None:
    await until(lambda: clock.sleepers >= count, "the job waits on the clock")


async def test_a_tick_job_runs_at_start_and_then_every_interval(clock: ManualClock) -> None:
    registry = JobRegistry(clock)
    tick = Counter()
    registry.start(Job("count", tick=tick, schedule=Every(60)))
    await until(lambda: tick.calls == 1, "the first run")
    await asleep(clock)
    health = registry.health()["count"]
    assert health["state"] == "running" and health["runs"] == 1 and health["failures"] == 0
    assert health["last_success"] == START.isoformat()
    assert health["next_run"] == (START + timedelta(seconds=60)).isoformat()
    clock.advance(59)
    await asyncio.sleep(0)
    assert tick.calls == 1
    clock.advance(1)
    await until(lambda: tick.calls == 2, "the second run a minute later")
    await registry.stop()
    assert registry.health()["count"]["state"] == "stopped"


async def test_a_failing_tick_backs_off_with_jitter_then_recovers(clock: ManualClock) -> None:
    registry = JobRegistry(clock, rng=lambda: 0.0)  # the shortest wait of the jitter: half the step
    tick = Counter(failures=3)
    registry.start(Job("flaky", tick=tick, schedule=Every(600), backoff=Backoff(initial=10, maximum=30)))
    for failures, step in ((1, 10), (2, 20), (3, 30)):
        await until(lambda f=failures: tick.calls == f, f"failure {failures}")  # type: ignore[misc]
        await asleep(clock)
        health = registry.health()["flaky"]
        assert health["state"] == "backing_off" and health["failures"] == failures
        assert health["last_error"] == f"RuntimeError: boom {failures}"
        assert health["next_run"] == (clock.now() + timedelta(seconds=step / 2)).isoformat()
        clock.advance(step / 2)
    await until(lambda: tick.calls == 4, "the run after the backoff")
    await asleep(clock)
    health = registry.health()["flaky"]
    assert health["state"] == "running" and health["failures"] == 0 and health["last_success"] is not None
    await registry.stop()


def test_backoff_doubles_to_its_cap_and_jitters_in_the_upper_half() -> None:
    backoff = Backoff(initial=1, maximum=8)
    assert [backoff.step(n) for n in (1, 2, 3, 4, 5, 500)] == [1, 2, 4, 8, 8, 8]
    assert backoff.delay(3, lambda: 0.0) == 2 and backoff.delay(3, lambda: 0.999) == pytest.approx(3.998)
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial=5, maximum=1)


class FakeLeases:
    """Leases granted or not as the test says (the PostgreSQL leases are tested in tests/core/test_lease.py)."""

    def __init__(self) -> None:
        self.granted = False
        self.taken = 0
        self.lost = False

    @contextlib.asynccontextmanager
    async def __call__(self, name: str) -> AsyncIterator[Lease]:
        self.taken += 1
        lease = Lease(name, held=self.granted)
        yield lease


async def test_a_job_with_a_lease_stands_by_until_it_gets_it(clock: ManualClock) -> None:
    leases = FakeLeases()
    registry = JobRegistry(clock, leases=leases)
    seen: list[str | None] = []

    async def body(ctx: JobContext) -> None:
        seen.append(ctx.lease.name if ctx.lease else None)
        ctx.succeeded()
        await asyncio.Event().wait()  # reads until stopped

    registry.start(Job("reader", body=body, lease="mailbox:1", standby_seconds=5))
    await asleep(clock)
    health = registry.health()["reader"]
    assert health["state"] == "standby" and health["lease"] == "mailbox:1" and not health["lease_held"]
    assert seen == []
    leases.granted = True
    clock.advance(5)
    await until(lambda: seen == ["mailbox:1"], "the body runs once the lease is granted")
    health = registry.health()["reader"]
    assert health["state"] == "running" and health["lease_held"] and health["last_success"] is not None
    await registry.stop()
    assert registry.health()["reader"]["state"] == "stopped" and not registry.health()["reader"]["lease_held"]


async def test_a_body_that_loses_its_lease_backs_off_and_comes_back(clock: ManualClock) -> None:
    leases = FakeLeases()
    leases.granted = True
    registry = JobRegistry(clock, leases=leases, rng=lambda: 1.0)
    changes: list[tuple[str, int]] = []
    runs = 0

    async def body(ctx: JobContext) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise LeaseLost("lost the lease 'poller'")
        await asyncio.Event().wait()

    registry.start(Job("poller", body=body, lease="poller", backoff=Backoff(initial=2, maximum=2),
                       on_change=lambda h: changes.append((h.state, h.failures))))
    await asleep(clock)
    assert registry.health()["poller"]["state"] == "backing_off"
    clock.advance(2)
    await until(lambda: runs == 2, "the body runs again after the backoff")
    assert changes[:3] == [("running", 0), ("backing_off", 1), ("running", 1)]
    await registry.stop()


async def test_a_wake_runs_the_tick_before_its_time_after_the_gathering_pause(clock: ManualClock) -> None:
    bus = EventBus()
    registry = JobRegistry(clock, bus=bus)
    tick = Counter()
    registry.start(Job("outbox", tick=tick, schedule=Every(60), wake_topics=("outbox.queued",), gather_seconds=0.5))
    await until(lambda: tick.calls == 1, "the first run")
    await asleep(clock)
    bus.publish("outbox.queued", {})
    await until(lambda: clock.pending_sleeps() == [0.5], "the gathering pause")
    assert tick.calls == 1  # still gathering
    clock.advance(0.5)
    await until(lambda: tick.calls == 2, "the woken run")
    registry.wake("outbox")
    await until(lambda: clock.pending_sleeps() == [0.5], "the gathering pause")
    clock.advance(0.5)
    await until(lambda: tick.calls == 3, "a run woken by name")
    await registry.stop()


async def test_more_work_waiting_runs_the_tick_again_at_once(clock: ManualClock) -> None:
    registry = JobRegistry(clock)
    batches = [5, 5, 2]

    async def tick(ctx: JobContext) -> bool:
        return batches.pop(0) == 5 if batches else False

    registry.start(Job("drain", tick=tick, schedule=Every(60)))
    await until(lambda: not batches, "every batch in one go")
    await registry.stop()


async def test_stop_lets_a_running_tick_finish_but_cancels_bodies_and_sleepers(clock: ManualClock) -> None:
    registry = JobRegistry(clock)
    release = asyncio.Event()
    finished: list[str] = []

    async def slow_tick(ctx: JobContext) -> None:
        await release.wait()
        finished.append("tick")

    async def body(ctx: JobContext) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("body cleaned up")

    registry.start(Job("slow", tick=slow_tick))
    registry.start(Job("reader", body=body))
    registry.start(Job("sleeper", tick=Counter(), schedule=Every(60)))
    await asleep(clock)
    stopping = asyncio.create_task(registry.stop(deadline=30))
    await until(lambda: "body cleaned up" in finished, "the body is cancelled at once")
    assert registry.health()["sleeper"]["state"] == "stopped"
    assert registry.health()["slow"]["state"] == "running"  # still finishing its tick
    release.set()
    await stopping
    assert finished == ["body cleaned up", "tick"]
    assert {h["state"] for h in registry.health().values()} == {"stopped"}


async def test_stop_cancels_a_tick_that_outlives_the_deadline() -> None:
    registry = JobRegistry()  # the system clock: the deadline is real time, kept tiny

    async def stuck(ctx: JobContext) -> None:
        await asyncio.Event().wait()

    registry.start(Job("stuck", tick=stuck))
    await until(lambda: registry.health()["stuck"]["runs"] == 1, "the tick started")
    await registry.stop(deadline=0.01)
    assert registry.health()["stuck"]["state"] == "stopped"


async def test_a_job_name_runs_once_and_a_lease_needs_a_database(clock: ManualClock) -> None:
    registry = JobRegistry(clock)
    registry.start(Job("once", tick=Counter(), schedule=Every(60)))
    with pytest.raises(ValueError, match="already running"):
        registry.start(Job("once", tick=Counter()))
    with pytest.raises(ValueError, match="lease"):
        registry.start(Job("leased", tick=Counter(), lease="x"))
    with pytest.raises(ValueError, match="exactly one"):
        Job("neither")
    await registry.stop()
    registry.start(Job("once", tick=Counter(), schedule=Every(60)))  # a stopped job can be started again
    await registry.stop()


def test_daily_schedule_in_a_time_zone() -> None:
    daily = DailyAt(time(3, 0), "Europe/Moscow")  # UTC+3
    assert daily.next_run(datetime(2024, 3, 1, 12, 0, tzinfo=UTC)) == datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    assert daily.next_run(datetime(2024, 3, 1, 23, 59, tzinfo=UTC)) == datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    assert daily.next_run(datetime(2024, 3, 2, 0, 0, tzinfo=UTC)) == datetime(2024, 3, 3, 0, 0, tzinfo=UTC)
    # Berlin skips 02:00-03:00 on 31 March 2024: a run at 02:30 happens right after the gap.
    berlin = DailyAt(time(2, 30), "Europe/Berlin")
    assert berlin.next_run(datetime(2024, 3, 30, 23, 0, tzinfo=UTC)) == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)


def test_schedule_specs() -> None:
    assert parse_schedule("every 30s") == Every(30)
    assert parse_schedule("every 5 minutes") == Every(300)
    assert parse_schedule("Every 2h") == Every(7200)
    assert parse_schedule("every day at 03:00") == DailyAt(time(3, 0), "UTC")
    assert parse_schedule("every day at 3:05 in Europe/Moscow") == DailyAt(time(3, 5), "Europe/Moscow")
    for bad in ("daily", "every day at 25:00", "every 3 fortnights", "every day at 03:00 in Mars/Base"):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_schedule(bad)
