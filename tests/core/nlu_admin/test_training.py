"""Training jobs are heartbeated; a job whose process died is failed within a minute by whoever is alive, so a
crash during training followed by a quick restart does not block training (issue 10). Time is a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.errors import ConflictError
from core.events import EventBus
from core.jobs import JobRegistry
from core.nlu_admin import service
from core.nlu_admin.catalog import ResponseCatalog
from core.nlu_admin.models import JobState, NluTrainingJob
from core.nlu_admin.training import STALE_JOBS_JOB, TrainingRunner, reap_stale_jobs, stale_jobs_job
from nlu.protocol import EngineHolder, EvaluationReport, Parse, ProgressCallback, TrainingData
from tests.support.waiting import until

Sessionmaker = async_sessionmaker[AsyncSession]


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Poll an async condition (a row the code under test writes) until it holds."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


async def job_row(sessionmaker: Sessionmaker, job_id: int) -> NluTrainingJob:
    async with sessionmaker() as session:
        return await service.get_job(session, job_id)


async def add_running_job(sessionmaker: Sessionmaker, clock: ManualClock) -> int:
    """A job as a process left it when it died: running, last heartbeat now."""
    async with sessionmaker() as session, session.begin():
        job = await service.create_job(session, None, activate=False, now=clock.now())
        job.state = JobState.running
        job.started_at = job.heartbeat_at = clock.now()
        job_id: int = job.id
    return job_id


async def test_a_dead_job_blocks_new_training_for_a_minute_at_most(sessionmaker: Sessionmaker) -> None:
    clock = ManualClock()
    dead = await add_running_job(sessionmaker, clock)
    clock.advance(59)
    async with sessionmaker() as session, session.begin():
        with pytest.raises(ConflictError, match=f"training job {dead} is already running"):
            await service.create_job(session, None, activate=False, now=clock.now())
    clock.advance(2)  # 61 s without a heartbeat: the restarted server's first request goes through
    async with sessionmaker() as session, session.begin():
        new = await service.create_job(session, None, activate=True, now=clock.now())
        assert new.state == JobState.queued
    job = await job_row(sessionmaker, dead)
    assert job.state == JobState.failed and job.error == service.ABANDONED
    assert "no heartbeat for over a minute" in (job.error or "") and job.finished_at == clock.now()


async def test_a_queued_job_that_never_started_is_failed_after_a_minute(sessionmaker: Sessionmaker) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        queued = (await service.create_job(session, None, activate=False, now=clock.now())).id
    clock.advance(60)
    assert await reap_stale_jobs(sessionmaker, clock) == []
    clock.advance(1)
    assert await reap_stale_jobs(sessionmaker, clock) == [queued]
    assert (await job_row(sessionmaker, queued)).state == JobState.failed
    assert await reap_stale_jobs(sessionmaker, clock) == []  # once


async def test_every_instance_reaps_dead_jobs_as_a_registered_job(sessionmaker: Sessionmaker) -> None:
    clock = ManualClock()
    dead = await add_running_job(sessionmaker, clock)
    jobs = JobRegistry(clock)
    jobs.start(stale_jobs_job(sessionmaker, clock))
    try:
        health = jobs.get(STALE_JOBS_JOB)
        assert health is not None
        await until(lambda: health.runs == 1 and clock.sleepers == 1, "the first look is done")
        clock.advance(31)
        await until(lambda: health.runs == 2 and clock.sleepers == 1, "the second look is done")
        assert (await job_row(sessionmaker, dead)).state == JobState.running  # 31 s: maybe only slow
        clock.advance(30)
        await eventually(lambda: _state_is(sessionmaker, dead, JobState.failed), "the dead job is failed")
        assert health.last_error is None and health.failures == 0
    finally:
        await jobs.stop(deadline=5)


async def _state_is(sessionmaker: Sessionmaker, job_id: int, state: JobState) -> bool:
    return (await job_row(sessionmaker, job_id)).state == state


class GatedEngine:
    """Trains until the test opens the gate: a training that takes as long as the test needs."""

    name = "gated"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def train(self, data: TrainingData, progress: ProgressCallback | None = None) -> str:
        self.started.set()
        await self.gate.wait()
        return "gated-1"

    async def parse(self, text: str) -> Parse:
        return Parse(text=text, intent=None, confidence=0.0, confident=False, language="en")

    async def evaluate(self, data: TrainingData) -> EvaluationReport:
        return EvaluationReport(accuracy=0.0, macro_f1=0.0, per_intent={}, confused_pairs=[])


async def start_training(sessionmaker: Sessionmaker, clock: ManualClock, engine: GatedEngine, *,
                         heartbeat_seconds: float = 10) -> tuple[int, asyncio.Task[None]]:
    runner = TrainingRunner(sessionmaker, EngineHolder(engine), EventBus(), ResponseCatalog(), clock=clock,
                            heartbeat_seconds=heartbeat_seconds)
    async with sessionmaker() as session, session.begin():
        job_id = (await service.create_job(session, None, activate=False, now=clock.now())).id
    task = asyncio.create_task(runner.run(job_id))
    async with asyncio.timeout(30):
        await engine.started.wait()
    return job_id, task


async def test_a_long_training_heartbeats_and_is_never_taken_for_dead(sessionmaker: Sessionmaker) -> None:
    clock = ManualClock()
    engine = GatedEngine()
    job_id, task = await start_training(sessionmaker, clock, engine)
    try:
        started = clock.now()
        assert (await job_row(sessionmaker, job_id)).heartbeat_at == started
        for _ in range(3):  # three minutes of training, a heartbeat at least every ten seconds of it
            clock.advance(9)
            beat_due = clock.now()
            clock.advance(1)
            await eventually(lambda due=beat_due: _heartbeat_after(sessionmaker, job_id, due), "a heartbeat")
            clock.advance(50)
            assert await reap_stale_jobs(sessionmaker, clock) == []
        assert (await job_row(sessionmaker, job_id)).state == JobState.running
    finally:
        engine.gate.set()
        async with asyncio.timeout(30):
            await task
    job = await job_row(sessionmaker, job_id)
    assert (job.state, job.version, job.heartbeat_at) == (JobState.succeeded, "gated-1", clock.now())


async def _heartbeat_after(sessionmaker: Sessionmaker, job_id: int, moment: datetime) -> bool:
    beat = (await job_row(sessionmaker, job_id)).heartbeat_at
    return beat is not None and beat >= moment


async def test_a_job_failed_as_dead_stays_failed_when_its_runner_comes_back(sessionmaker: Sessionmaker) -> None:
    """A runner stalled past the minute (its database away) finds its job failed: it stops writing to it."""
    clock = ManualClock()
    engine = GatedEngine()
    # Its heartbeats stall: as if the runner's process could not reach the database for a while.
    job_id, task = await start_training(sessionmaker, clock, engine, heartbeat_seconds=3600)
    async with sessionmaker() as session, session.begin():
        clock.advance(61)
        assert await service.fail_stale_jobs(session, clock.now()) == [job_id]
    engine.gate.set()
    async with asyncio.timeout(30):
        await task
    job = await job_row(sessionmaker, job_id)
    assert (job.state, job.error, job.version) == (JobState.failed, service.ABANDONED, None)
