"""Due work on both databases: scheduled by (kind, key), fired once with its effect, retried, failed, raced."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.jobs import Backoff, JobRegistry
from core.jobs import service as tasks
from core.jobs.models import ScheduledTask, TaskState
from core.jobs.tasks import DueTask, DueTaskRunner, TaskHandlers
from tests.support.waiting import until

EFFECT = "test.effect"


async def record_effect(session: AsyncSession, task: DueTask) -> None:
    """The effect of firing: a row written in the firing transaction (a duplicate firing would add another)."""
    # Due in a century: nothing here fires it.
    await tasks.schedule(session, EFFECT, f"{task.key}/{uuid.uuid4().hex}", task.due_at + timedelta(days=36500),
                         {"of": task.key})


async def effects(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(ScheduledTask).where(ScheduledTask.kind == EFFECT))).all()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.payload["of"]] = counts.get(row.payload["of"], 0) + 1
    return counts


async def task_row(sessionmaker: async_sessionmaker[AsyncSession], kind: str, key: str) -> ScheduledTask:
    async with sessionmaker() as session:
        row = await tasks.get(session, kind, key)
    assert row is not None
    return row


def handlers(**registrations: int) -> TaskHandlers:
    registry = TaskHandlers()
    registry.register("remind", record_effect, max_attempts=registrations.get("remind", 5))
    return registry


async def test_scheduling_twice_is_one_task_and_it_fires_when_due(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    due = clock.now() + timedelta(minutes=10)
    async with sessionmaker() as session, session.begin():
        assert await tasks.schedule(session, "remind", "contract:7", due, {"contract": 7}) is True
        assert await tasks.schedule(session, "remind", "contract:7", due + timedelta(days=1)) is False
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(ScheduledTask))
    assert count == 1
    runner = DueTaskRunner(sessionmaker, handlers(), clock=clock)
    assert await runner.run_once() == 0
    clock.advance(599)
    assert await runner.run_once() == 0
    clock.advance(1)
    assert await runner.run_once() == 1
    assert await effects(sessionmaker) == {"contract:7": 1}
    row = await task_row(sessionmaker, "remind", "contract:7")
    assert row.state == TaskState.done and row.done_at == clock.now() and row.attempts == 1
    assert row.claimed_by is None and row.payload == {"contract": 7}
    assert await runner.run_once() == 0  # done is done
    assert await effects(sessionmaker) == {"contract:7": 1}


async def test_cancel_and_reschedule_by_kind_and_key(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    runner = DueTaskRunner(sessionmaker, handlers(), clock=clock)
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, "remind", "a", clock.now() + timedelta(seconds=5))
        await tasks.schedule(session, "remind", "b", clock.now() + timedelta(seconds=5))
    async with sessionmaker() as session, session.begin():
        assert await tasks.cancel(session, "remind", "a") is True
        assert await tasks.cancel(session, "remind", "a") is False
        assert await tasks.reschedule(session, "remind", "b", clock.now() + timedelta(hours=1)) is True
    clock.advance(5)
    assert await runner.run_once() == 0
    clock.advance(3600)
    assert await runner.run_once() == 1
    assert await effects(sessionmaker) == {"b": 1}
    async with sessionmaker() as session, session.begin():  # a fired task armed again fires again
        assert await tasks.reschedule(session, "remind", "b", clock.now(), {"again": True}) is True
        assert await tasks.reschedule(session, "remind", "new", clock.now()) is False  # added
    assert await runner.run_once() == 2
    assert await effects(sessionmaker) == {"b": 2, "new": 1}


async def test_a_failing_handler_is_retried_with_backoff_then_failed_with_the_reason(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    calls = 0

    async def flaky(session: AsyncSession, task: DueTask) -> None:
        nonlocal calls
        calls += 1
        await record_effect(session, task)  # rolled back with the failure
        raise RuntimeError(f"survey service down ({task.attempt})")

    registry = TaskHandlers()
    registry.register("survey", flaky, max_attempts=3, backoff=Backoff(initial=60, maximum=60))
    runner = DueTaskRunner(sessionmaker, registry, clock=clock)
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, "survey", "ticket:1", clock.now())
    assert await runner.run_once() == 1
    row = await task_row(sessionmaker, "survey", "ticket:1")
    assert row.state == TaskState.pending and row.attempts == 1 and row.last_error == \
        "RuntimeError: survey service down (1)"
    assert timedelta(seconds=30) <= row.due_at - clock.now() <= timedelta(seconds=60)  # the jittered backoff
    assert await runner.run_once() == 0
    for attempt in (2, 3):
        clock.advance(60)
        assert await runner.run_once() == 1
        assert calls == attempt
    row = await task_row(sessionmaker, "survey", "ticket:1")
    assert row.state == TaskState.failed and row.attempts == 3
    assert row.last_error == "RuntimeError: survey service down (3)"
    clock.advance(3600)
    assert await runner.run_once() == 0 and calls == 3
    assert await effects(sessionmaker) == {}
    assert runner.stats.retried == 2 and runner.stats.failed == 1


async def test_a_task_without_a_handler_fails_with_the_reason(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, "nobody.handles", "x", clock.now())
    assert await DueTaskRunner(sessionmaker, handlers(), clock=clock).run_once() == 1
    row = await task_row(sessionmaker, "nobody.handles", "x")
    assert row.state == TaskState.failed and "no handler for tasks of kind 'nobody.handles'" in (row.last_error or "")


async def test_a_runner_killed_mid_firing_leaves_the_task_to_fire_later_once(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    entered = asyncio.Event()

    async def hanging(session: AsyncSession, task: DueTask) -> None:
        await record_effect(session, task)
        entered.set()
        await asyncio.Event().wait()  # the process dies here, in the middle of the transaction

    first = TaskHandlers()
    first.register("remind", hanging)
    dying = DueTaskRunner(sessionmaker, first, clock=clock, lease_seconds=120)
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, "remind", "k", clock.now())
    killed = asyncio.create_task(dying.run_once())
    await entered.wait()
    killed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await killed
    row = await task_row(sessionmaker, "remind", "k")
    assert row.state == TaskState.pending and row.claimed_by == dying.runner_id and row.attempts == 0
    assert await effects(sessionmaker) == {}

    survivor = DueTaskRunner(sessionmaker, handlers(), clock=clock, lease_seconds=120)
    assert await survivor.run_once() == 0  # the dead runner's claim still runs
    clock.advance(120)
    assert await survivor.run_once() == 1
    assert await survivor.run_once() == 0
    assert await effects(sessionmaker) == {"k": 1}


@pytest.mark.postgres
async def test_two_runners_racing_for_the_same_due_rows_fire_each_once(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("FOR UPDATE SKIP LOCKED is a PostgreSQL feature; SQLite serves one process")
    clock = ManualClock()
    keys = [f"t{i}" for i in range(60)]
    async with sessionmaker() as session, session.begin():
        for key in keys:
            await tasks.schedule(session, "remind", key, clock.now())

    async def slow_effect(session: AsyncSession, task: DueTask) -> None:
        await asyncio.sleep(0)  # let the other runner in between the statements
        await record_effect(session, task)

    registry = TaskHandlers()
    registry.register("remind", slow_effect)
    runners = [DueTaskRunner(sessionmaker, registry, clock=clock, batch_size=7) for _ in range(2)]

    async def drain(runner: DueTaskRunner) -> None:
        while await runner.run_once():
            pass

    await asyncio.gather(*(drain(r) for r in runners))
    assert await effects(sessionmaker) == dict.fromkeys(keys, 1)
    assert sum(r.stats.fired for r in runners) == 60 and all(r.stats.fired for r in runners)


async def test_the_runner_as_a_job_fires_on_the_registry_clock(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    runner = DueTaskRunner(sessionmaker, handlers(), clock=clock)
    registry = JobRegistry(clock)
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, "remind", "later", clock.now() + timedelta(seconds=10))
    registry.start(runner.job(interval=5))
    try:
        await until(lambda: clock.pending_sleeps() == [5.0], "the first (empty) run is over")
        clock.advance(5)
        await until(lambda: registry.health()["due-tasks"]["runs"] == 2, "the second run")
        await until(lambda: clock.pending_sleeps() == [5.0], "the second run is over")
        assert runner.stats.fired == 0
        clock.advance(5)
        await until(lambda: runner.stats.fired == 1, "the task fires at its time")
        assert registry.health()["due-tasks"]["fired"] == 1
    finally:
        await registry.stop()
    assert await effects(sessionmaker) == {"later": 1}


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_batch_fires_together_and_one_failing_handler_leaves_the_others_fired_once(
        sessionmaker: async_sessionmaker[AsyncSession], concurrency: int) -> None:
    clock = ManualClock()

    async def picky(session: AsyncSession, task: DueTask) -> None:
        await record_effect(session, task)
        if task.key == "k3":
            raise RuntimeError("k3 is broken")

    registry = TaskHandlers()
    registry.register("remind", record_effect)
    registry.register("picky", picky, max_attempts=2, backoff=Backoff(initial=60, maximum=60))
    runner = DueTaskRunner(sessionmaker, registry, clock=clock, batch_size=10, concurrency=concurrency)
    async with sessionmaker() as session, session.begin():
        for i in range(8):
            await tasks.schedule(session, "picky" if i % 2 else "remind", f"k{i}", clock.now())
    assert await runner.run_once() == 8
    assert await effects(sessionmaker) == {f"k{i}": 1 for i in range(8) if i != 3}
    assert runner.stats.fired == 7 and runner.stats.retried == 1
    row = await task_row(sessionmaker, "picky", "k3")
    assert row.state == TaskState.pending and row.attempts == 1 and row.last_error == "RuntimeError: k3 is broken"
    clock.advance(60)
    assert await runner.run_once() == 1
    assert await effects(sessionmaker) == {f"k{i}": 1 for i in range(8) if i != 3}
    assert runner.stats.failed == 1


@pytest.mark.parametrize("claimed", [1, 2])
async def test_a_task_fired_alone_runs_its_failing_handler_once_per_firing(
        sessionmaker: async_sessionmaker[AsyncSession], claimed: int) -> None:
    """A part of one task (a lone claim, or fewer tasks than `concurrency`) fires alone at once: no batch attempt
    that rolls back and runs the handler a second time for the same firing."""
    clock = ManualClock()
    calls: list[str] = []

    async def broken(session: AsyncSession, task: DueTask) -> None:
        calls.append(task.key)
        raise RuntimeError("broken")

    registry = TaskHandlers()
    registry.register("broken", broken, max_attempts=3)
    runner = DueTaskRunner(sessionmaker, registry, clock=clock, batch_size=10, concurrency=4)
    async with sessionmaker() as session, session.begin():
        for i in range(claimed):
            await tasks.schedule(session, "broken", f"b{i}", clock.now())
    assert await runner.run_once() == claimed
    assert sorted(calls) == [f"b{i}" for i in range(claimed)]
    assert runner.stats.retried == claimed and runner.stats.fired == 0
    for i in range(claimed):
        row = await task_row(sessionmaker, "broken", f"b{i}")
        assert row.state == TaskState.pending and row.attempts == 1
