"""Runs NLU training jobs in the background, keeps the bot's FAQ answers in memory, and keeps every instance on
the model version the database names.

Training is CPU work: it runs in a thread, reports progress to the job row (throttled), and never blocks the
event loop. The new version is evaluated on a held-out split before anyone switches it on.

Model switches: activating or rolling back writes the version to `nlu_active_model` (the database is the one
place all instances share for sure) and announces it on the bus. Every instance loads what that row names when
the announcement arrives, when the live bridge comes back, and every `model_sync_seconds` anyway, so a switch
made while Redis was down (or while an instance was restarting) still reaches everyone within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.state import AppState, EngineHolder
from core.audit import service as audit
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.events import BRIDGE_TOPIC, EventBus, emit
from core.nlu_admin import repository as nlu_repo
from core.nlu_admin import service as nlu_admin
from core.nlu_admin.models import JobState
from core.users.models import User
from nlu.errors import ModelNotFoundError
from nlu.protocol import EvaluationReport, TrainingData, TrainingExample

log = logging.getLogger(__name__)
MODEL_TOPIC = "nlu.model"  # a model version was switched on: other instances load it too
HOLDOUT_EVERY = 5  # every fifth example of an intent is held out for the report


class ResponseCatalog:
    """FAQ answers per intent and language, read from the database and reloaded when admins change them."""

    def __init__(self) -> None:
        self._answers: dict[str, dict[str, str]] = {}

    async def reload(self, session: AsyncSession) -> None:
        self._answers = await nlu_admin.responses(session)

    def lookup(self, intent: str, language: str) -> str | None:
        by_lang = self._answers.get(intent) or {}
        return by_lang.get(language) or by_lang.get("en") or by_lang.get("ru")


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
                 catalog: ResponseCatalog, extras: TrainingData | None) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.bus = bus
        self.catalog = catalog
        self.extras = extras
        self.tasks: set[asyncio.Task[None]] = set()
        # Switches a freshly trained version on everywhere (ModelSync.switch_to); set by the app.
        self.switch_to: Callable[[str], Awaitable[None]] | None = None

    def start(self, job_id: int) -> None:
        task = asyncio.create_task(self.run(job_id), name=f"nlu-train-{job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _update(self, job_id: int, **values: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            job = await nlu_admin.get_job(session, job_id)
            for key, value in values.items():
                setattr(job, key, value)
        self.bus.publish("nlu.jobs", {"job_id": job_id, **{k: v for k, v in values.items()
                                                             if k in ("state", "progress", "stage", "version")}})

    async def run(self, job_id: int) -> None:
        latest: dict[str, Any] = {"progress": 0.0, "stage": "starting"}
        last_saved = 0.0

        def progress(fraction: float, stage: str) -> None:  # called from the training thread
            latest.update(progress=round(0.3 + 0.7 * fraction, 3), stage=stage)

        async def persist_progress() -> None:
            nonlocal last_saved
            while True:
                await asyncio.sleep(0.3)
                if time.monotonic() - last_saved > 0.3:
                    last_saved = time.monotonic()
                    await self._update(job_id, progress=latest["progress"], stage=latest["stage"])

        saver: asyncio.Task[None] | None = None
        try:
            async with self.sessionmaker() as session, session.begin():
                job = await nlu_admin.get_job(session, job_id)
                activate = job.activate
                job.state = JobState.running
                job.started_at = utcnow()
                job.stage = "reading training data"
                data = await nlu_admin.training_data(session, self.extras)
            engine = self.engine.current
            report: dict[str, Any] = {"n_examples": len(data.examples), "n_intents": len(data.intents)}
            fit = getattr(engine, "fit", None)
            if callable(fit):
                await self._update(job_id, stage="evaluating on a held-out split", progress=0.05)
                report["holdout"] = await asyncio.to_thread(self._holdout_report, engine, data)
            saver = asyncio.create_task(persist_progress())
            train_sync = getattr(engine, "train_sync", None)
            if callable(train_sync):
                # Switched on below, through the database, like an admin's activation.
                version = await asyncio.to_thread(train_sync, data, progress,
                                                  activate=activate and self.switch_to is None)
                versions: list[Any] = getattr(engine, "list_versions", list)()
                manifest: dict[str, Any] = next((v.manifest for v in versions if v.version == version), {})
                report["cross_validation"] = manifest.get("cross_validation", {})
                report["train_seconds"] = manifest.get("train_seconds")
            else:
                version = await engine.train(data, progress)
            saver.cancel()
            if activate and callable(train_sync) and self.switch_to is not None:
                await self.switch_to(version)
            await self._update(job_id, state=JobState.succeeded, progress=1.0, stage="done", version=version,
                               report=report, finished_at=utcnow())
            if activate:
                self.bus.publish(MODEL_TOPIC, {"version": version})
            log.info("nlu training finished", extra={"job_id": job_id, "version": version, "activated": activate})
        except asyncio.CancelledError:
            await asyncio.shield(self._update(job_id, state=JobState.failed, error="cancelled: the server stopped",
                                              finished_at=utcnow()))
            raise
        except Exception as exc:
            log.exception("nlu training failed", extra={"job_id": job_id})
            await self._update(job_id, state=JobState.failed, error=f"{type(exc).__name__}: {exc}"[:2000],
                               finished_at=utcnow())
        finally:
            if saver is not None:
                saver.cancel()

    @staticmethod
    def _holdout_report(engine: Any, data: TrainingData) -> dict[str, Any]:
        from nlu.embedded import EmbeddedEngine, evaluate_predictions

        train, test = split_holdout(data)
        if not test.examples or len(train.intents) < 2:
            return {"skipped": "too few examples for a held-out evaluation"}
        model, _metrics = engine.fit(train)
        probs = EmbeddedEngine.probabilities(model, [e.text for e in test.examples])
        return report_dict(evaluate_predictions(model, probs, [e.intent for e in test.examples]))


class VersionRead(BaseModel):
    """A saved model version as admins see it (from the engine's manifest)."""

    version: str
    active: bool  # the version all instances should use (the database's, else this instance's model dir)
    loaded_here: bool = False  # the version this instance parses with right now
    instances: list[str] = []  # the instances that report they parse with it
    created_at: str | None
    n_examples: int | None
    n_intents: int | None
    threshold: float | None
    train_seconds: float | None
    size_bytes: int | None
    cross_validation: dict[str, Any]


async def model_versions(state: AppState, session: AsyncSession | None = None) -> list[VersionRead] | None:
    """Newest first; None when the engine keeps its models itself (Rasa, the keyword engine).

    With a session, `active` is the version in the database and each version lists the instances using it.
    """
    engine = state.nlu.current
    if not callable(getattr(engine, "list_versions", None)):
        return None
    versions = await asyncio.to_thread(engine.list_versions)  # type: ignore[attr-defined]
    loaded = getattr(engine, "active_version", None)
    active: str | None = None
    serving: dict[str, list[str]] = {}
    if session is not None:
        active = await nlu_repo.active_version(session)
        for row in await nlu_repo.list_instances(session, utcnow() - state.model_sync.stale_after):
            if row.version:
                serving.setdefault(row.version, []).append(row.id)
    return [VersionRead(version=v.version, active=v.version == active if active else v.active,
                        loaded_here=v.version == loaded, instances=serving.get(v.version, []),
                        created_at=v.manifest.get("created_at"),
                        n_examples=v.manifest.get("n_examples"), n_intents=len(v.manifest.get("intents", [])),
                        threshold=v.manifest.get("threshold"), train_seconds=v.manifest.get("train_seconds"),
                        size_bytes=v.manifest.get("size_bytes"),
                        cross_validation=v.manifest.get("cross_validation") or {})
            for v in reversed(versions)]


async def instances_and_active(state: AppState, session: AsyncSession) -> tuple[list[Any], str | None]:
    """The instances that reported recently, and the active version in the database."""
    rows = await nlu_repo.list_instances(session, utcnow() - state.model_sync.stale_after)
    return list(rows), await nlu_repo.active_version(session)


def versions_engine(state: AppState) -> Any:
    """The active engine when it keeps model versions itself (the embedded one); else a clear 409."""
    engine = state.nlu.current
    if not hasattr(engine, "list_versions"):
        raise ConflictError(f"the {engine.name} engine keeps its models itself; versions are managed there")
    return engine


async def release_connection(session: AsyncSession) -> None:
    """End the request's transaction (its reads: who is signed in) before waiting for the model lock.

    The lock's holder (the periodic check, a training job) needs a connection while it holds it; a request that
    waited for the lock while holding one deadlocked with it on SQLite, whose pool is one connection.
    """
    await session.commit()


async def activate_version(state: AppState, session: AsyncSession, actor: User, version: str) -> None:
    """Switch a model version on here, in the database, and (through the event) on every other instance.

    Commits: the periodic check must never read the old version back while this instance runs the new one.
    """
    engine = versions_engine(state)
    await release_connection(session)
    async with state.model_sync.lock:
        try:
            await asyncio.to_thread(engine.activate, version)
        except (ModelNotFoundError, FileNotFoundError, ValueError) as exc:
            raise NotFoundError(f"model version {version!r} not found") from exc
        await nlu_repo.set_active_version(session, version)
        audit.record(session, actor, "nlu.activate", "nlu_version", version)
        emit(session, MODEL_TOPIC, {"version": version})
        await session.commit()
    state.model_sync.loaded_changed()


async def rollback_version(state: AppState, session: AsyncSession, actor: User) -> str:
    """Switch back to the version active before the current one; returns it (committed, like activation)."""
    engine = versions_engine(state)
    await release_connection(session)
    async with state.model_sync.lock:
        try:
            previous: str = await asyncio.to_thread(engine.rollback)
        except ModelNotFoundError as exc:
            raise ConflictError(str(exc)) from exc
        await nlu_repo.set_active_version(session, previous)
        audit.record(session, actor, "nlu.rollback", "nlu_version", previous)
        emit(session, MODEL_TOPIC, {"version": previous})
        await session.commit()
    state.model_sync.loaded_changed()
    return previous


class ModelSync:
    """Keeps this instance on the model version `nlu_active_model` names, and reports what it uses.

    Looks when a switch is announced, when the live bridge is back, and every `interval` seconds (one
    primary-key read); reports to `nlu_instances` when its version changes and every `report_every` seconds.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], engine: EngineHolder, bus: EventBus,
                 instance: str, *, interval: float, report_every: float = 30.0) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.bus = bus
        self.freeze_heap = False  # the server process: a replaced model is collected and the new one frozen
        self.instance = instance
        self.interval = interval
        self.report_every = report_every
        self.stale_after = timedelta(seconds=max(3 * report_every, 3 * interval))
        self.lock = asyncio.Lock()
        self.wanted: str | None = None
        self.checked_at: datetime | None = None
        self.last_error: str | None = None
        self.switches = 0
        self.started_at = utcnow()
        self._reported: tuple[str, str | None] | None = None
        self._reported_at = 0.0
        self._wake = asyncio.Event()

    @property
    def loaded(self) -> str | None:
        version = getattr(self.engine.current, "active_version", None)
        return version if isinstance(version, str) else None

    @property
    def versioned(self) -> bool:
        engine = self.engine.current
        return callable(getattr(engine, "list_versions", None)) and callable(getattr(engine, "load_version", None))

    def health(self) -> dict[str, Any]:
        in_sync = not self.versioned or self.wanted is None or self.wanted == self.loaded
        return {"engine": self.engine.current.name, "version": self.loaded, "active": self.wanted,
                "in_sync": in_sync, "instance": self.instance, "switches": self.switches,
                "checked_at": self.checked_at.isoformat() if self.checked_at else None,
                "last_error": self.last_error}

    def loaded_changed(self) -> None:
        """This instance switched by itself (an admin's request here): report it now."""
        self._wake.set()

    async def run(self) -> None:
        async def listen() -> None:
            async with self.bus.subscribe(MODEL_TOPIC, BRIDGE_TOPIC) as events:
                while True:
                    topic, payload = await events.get()
                    if topic == MODEL_TOPIC or payload.get("state") == "up":
                        self._wake.set()

        listener = asyncio.create_task(listen(), name="nlu-model-events")
        try:
            while True:
                await self.check()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def check(self) -> None:
        """Load the version the database names if this instance runs another one; report what it runs."""
        try:
            async with self.lock:
                await self._converge()
            await self._report()
            self.last_error = None
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("nlu model sync: %s", self.last_error)

    async def switch_to(self, version: str) -> None:
        """Switch a version this instance already has on everywhere (a training job that activates)."""
        engine = self.engine.current
        async with self.lock:
            await asyncio.to_thread(engine.activate, version)  # type: ignore[attr-defined]
            async with self.sessionmaker() as session, session.begin():
                await nlu_repo.set_active_version(session, version)
        self._wake.set()

    async def _converge(self) -> None:
        loaded = self.loaded
        async with self.sessionmaker() as session:
            wanted = await nlu_repo.active_version(session)
            if wanted is None and self.versioned and loaded:
                # The first instance on this database: the version it loaded is the one everyone uses.
                await nlu_repo.set_active_version(session, loaded, only_if_unset=True)
                await session.commit()
                wanted = await nlu_repo.active_version(session)
        self.wanted, self.checked_at = wanted, utcnow()
        if not self.versioned or wanted is None or wanted == loaded:
            return
        engine = self.engine.current
        await asyncio.to_thread(engine.load_version, wanted)  # type: ignore[attr-defined]
        self.switches += 1
        log.info("nlu model switched to the active version", extra={"version": wanted, "was": loaded})
        if self.freeze_heap:
            # The previous model is garbage now: one full pass frees it, and the new one is frozen.
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    async def _report(self) -> None:
        key = (self.engine.current.name, self.loaded)
        if key == self._reported and time.monotonic() - self._reported_at < self.report_every:
            return
        async with self.sessionmaker() as session, session.begin():
            await nlu_repo.report_instance(session, self.instance, host=socket.gethostname(), pid=os.getpid(),
                                           engine=key[0], version=key[1], started_at=self.started_at)
            await nlu_repo.forget_instances(session, utcnow() - timedelta(days=1))
        self._reported, self._reported_at = key, time.monotonic()

    async def forget(self) -> None:
        """A clean stop: this instance no longer serves anything."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3), self.sessionmaker() as session, session.begin():
                await nlu_repo.forget_instance(session, self.instance)
