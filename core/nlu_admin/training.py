"""Training jobs: run in the background of the process that took the request, heartbeated, reaped when dead.

Training is CPU work (or a wait on the Rasa server): the engine runs it off the event loop, progress goes to
the job row (throttled), and the row is heartbeated every few seconds, so any live instance fails a job whose
process died within a minute (`service.fail_stale_jobs`). The new version is evaluated on a held-out split
before anyone switches it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from core.events import EventBus, Topic
from core.jobs import Every, Job, JobContext, JobRegistry
from core.nlu_admin import service
from core.nlu_admin.catalog import ResponseCatalog
from core.nlu_admin.models import JobState
from core.nlu_admin.versions import MODEL_TOPIC
from nlu.protocol import EngineHolder, EvaluationReport, TrainingData, TrainingExample

log = logging.getLogger(__name__)
JOBS_TOPIC = Topic.NLU_JOBS  # a training job's state or progress changed (the console's job page follows it)
HOLDOUT_EVERY = 5  # every fifth example of an intent is held out for the report
HEARTBEAT_SECONDS = 10.0  # well inside service.STALE_AFTER
PROGRESS_SECONDS = 0.3  # how often progress is written to the job row while it changes
FINISHED = (JobState.succeeded, JobState.failed)
TRAINING_JOB = "nlu-training"
STALE_JOBS_JOB = "nlu-stale-training-jobs"
IDLE_CHECK_SECONDS = 3600.0  # the runner is woken by `start`; its schedule only keeps it ticking
REAP_SECONDS = 30.0  # how often every instance looks for training jobs whose process died


class JobAbandoned(Exception):
    """The job row was failed by someone else (no heartbeat reached it in time): this run stops writing it."""


def split_holdout(data: TrainingData) -> tuple[TrainingData, TrainingData]:
    """A deterministic stratified split: every fifth example of each intent with five or more."""
    by_intent: dict[str, list[TrainingExample]] = {}
    for ex in data.examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    train: list[TrainingExample] = []
    test: list[TrainingExample] = []
    for examples in by_intent.values():
        for i, ex in enumerate(examples):
            (test if len(examples) >= HOLDOUT_EVERY and i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else train).append(ex)
    return (TrainingData(examples=train, synonyms=data.synonyms, regexes=data.regexes, lookups=data.lookups),
            TrainingData(examples=test))


def report_dict(report: EvaluationReport) -> dict[str, Any]:
    out = asdict(report)
    out["confused_pairs"] = [list(p) for p in report.confused_pairs]
    return out


class TrainingRunner:
    """One training at a time per process; the job row is the shared state other instances and pages read."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], engine: EngineHolder, bus: EventBus,
                 catalog: ResponseCatalog, *, clock: Clock = SYSTEM_CLOCK,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.bus = bus
        self.catalog = catalog
        self.clock = clock
        self.heartbeat_seconds = heartbeat_seconds
        self._queue: deque[int] = deque()  # job ids handed to this process, in order
        self.current: int | None = None
        self._wake: Callable[[], None] | None = None  # runs the registered job's tick now (set by `job`)
        # Switches a freshly trained version on everywhere (ModelSync.switch_to); set by the app.
        self.switch_to: Callable[[str], Awaitable[None]] | None = None
        # Stores a freshly trained version's files in the database for the other instances (ModelStore.publish).
        self.publish: Callable[[str], Awaitable[bool]] | None = None

    def start(self, job_id: int) -> None:
        """Run a queued job (committed by the caller) in the background of this process, after any before it."""
        if self._wake is None:
            raise RuntimeError("the training runner is not registered as a job (TrainingRunner.job)")
        self._queue.append(job_id)
        self._wake()

    def job(self, jobs: JobRegistry) -> Job:
        """The runner as a registered job: woken by `start`, it trains the jobs handed to it one at a time.

        A stopping app cancels a training (the job row says so); the registry's health shows the runner's
        last run, error and heartbeat, and the job row is heartbeated for the other instances.
        """
        self._wake = lambda: jobs.wake(TRAINING_JOB)

        async def tick(ctx: JobContext) -> bool:
            if not self._queue:
                return False
            job_id = self._queue.popleft()
            self.current = job_id
            try:
                await self.run(job_id, ctx)
            finally:
                self.current = None
            return bool(self._queue)

        def details() -> dict[str, Any]:
            return {"training_job": self.current, "queued_jobs": len(self._queue)}

        return Job(TRAINING_JOB, tick=tick, schedule=Every(IDLE_CHECK_SECONDS), cancel_on_stop=True,
                   details=details)

    async def _update(self, job_id: int, **values: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            job = await service.get_job(session, job_id)
            if job.state in FINISHED:
                raise JobAbandoned(f"training job {job_id} is {job.state.value} already: {job.error}")
            for key, value in values.items():
                setattr(job, key, value)
        self.bus.publish(JOBS_TOPIC, {"job_id": job_id, **{k: v for k, v in values.items()
                                                           if k in ("state", "progress", "stage", "version")}})

    async def run(self, job_id: int, ctx: JobContext | None = None) -> None:
        """Train one queued job to its end; failures end up in the job row, never raised."""
        latest: dict[str, Any] = {"progress": 0.0, "stage": "starting"}

        def progress(fraction: float, stage: str) -> None:  # called from the training thread
            latest.update(progress=round(0.3 + 0.7 * fraction, 3), stage=stage)

        async def beat() -> None:
            """Progress while it changes, and a heartbeat at least every `heartbeat_seconds` regardless."""
            saved = (latest.get("progress"), latest.get("stage"))
            beaten = self.clock.monotonic()
            while True:
                await asyncio.sleep(PROGRESS_SECONDS)
                current = (latest.get("progress"), latest.get("stage"))
                due = self.clock.monotonic() - beaten >= self.heartbeat_seconds
                if current == saved and not due:
                    continue
                values: dict[str, Any] = {"heartbeat_at": self.clock.now()}
                if "progress" in latest and current != saved:
                    values.update(progress=current[0], stage=current[1])
                await self._update(job_id, **values)
                saved, beaten = current, self.clock.monotonic()
                if ctx is not None:
                    ctx.beat()

        beating: asyncio.Task[None] | None = None
        try:
            now = self.clock.now()
            async with self.sessionmaker() as session, session.begin():
                job = await service.get_job(session, job_id)
                if job.state != JobState.queued:
                    raise JobAbandoned(f"training job {job_id} is {job.state.value}, not queued")
                activate = job.activate
                job.state = JobState.running
                job.started_at = job.heartbeat_at = now
                job.stage = "reading training data"
                data = await service.training_data(session)
            latest.clear()  # nothing to save until there is progress; heartbeats go on meanwhile
            beating = asyncio.create_task(beat(), name=f"nlu-train-{job_id}-heartbeat")
            holder = self.engine.current
            engine = self.engine.versioned
            report: dict[str, Any] = {"n_examples": len(data.examples), "n_intents": len(data.intents)}
            if engine is not None:
                await self._update(job_id, stage="evaluating on a held-out split", progress=0.05,
                                   heartbeat_at=self.clock.now())
                report["holdout"] = await self._holdout_report(engine.holdout_evaluation, data)
                latest.update(progress=0.3, stage="training")
                # Switched on below, through the database, like an admin's activation.
                version = await engine.train_version(data, progress, activate=activate and self.switch_to is None)
                manifest = next((v.manifest for v in await engine.saved_versions() if v.version == version), {})
                report["cross_validation"] = manifest.get("cross_validation", {})
                report["train_seconds"] = manifest.get("train_seconds")
                if self.publish is not None:  # before the switch: other instances fetch it when they follow
                    await self.publish(version)
                if activate and self.switch_to is not None:
                    await self.switch_to(version)
            else:
                latest.update(progress=0.3, stage="training")
                version = await holder.train(data, progress)
            beating.cancel()
            await self._update(job_id, state=JobState.succeeded, progress=1.0, stage="done", version=version,
                               report=report, finished_at=self.clock.now(), heartbeat_at=self.clock.now())
            if activate:
                self.bus.publish(MODEL_TOPIC, {"version": version})
            log.info("nlu training finished", extra={"job_id": job_id, "version": version, "activated": activate})
        except asyncio.CancelledError:
            with contextlib.suppress(JobAbandoned):
                await asyncio.shield(self._update(job_id, state=JobState.failed,
                                                  error="cancelled: the server stopped",
                                                  finished_at=self.clock.now()))
            raise
        except JobAbandoned as exc:
            log.warning("nlu training stopped: %s", exc, extra={"job_id": job_id})
        except Exception as exc:
            log.exception("nlu training failed", extra={"job_id": job_id})
            with contextlib.suppress(JobAbandoned):
                await self._update(job_id, state=JobState.failed, error=f"{type(exc).__name__}: {exc}"[:2000],
                                   finished_at=self.clock.now())
        finally:
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError, JobAbandoned, Exception):
                    await beating

    @staticmethod
    async def _holdout_report(evaluate: Callable[[TrainingData, TrainingData], Awaitable[EvaluationReport | None]],
                              data: TrainingData) -> dict[str, Any]:
        train, test = split_holdout(data)
        if not test.examples or len(train.intents) < 2:
            return {"skipped": "too few examples for a held-out evaluation"}
        report = await evaluate(train, test)
        if report is None:
            return {"skipped": "this engine evaluates on its own server"}
        return report_dict(report)


async def reap_stale_jobs(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock = SYSTEM_CLOCK) -> list[int]:
    """Fail every training job whose process died (no heartbeat for a minute); returns their ids."""
    async with sessionmaker() as session, session.begin():
        failed = await service.fail_stale_jobs(session, clock.now())
    if failed:
        log.warning("nlu training jobs abandoned by their server failed", extra={"job_ids": failed})
    return failed


def stale_jobs_job(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock = SYSTEM_CLOCK) -> Job:
    """Every instance, twice a minute: fail the training jobs whose process died (no lease: any live one may)."""

    async def tick(ctx: JobContext) -> None:
        await reap_stale_jobs(sessionmaker, clock)

    return Job(STALE_JOBS_JOB, tick=tick, schedule=Every(REAP_SECONDS))
