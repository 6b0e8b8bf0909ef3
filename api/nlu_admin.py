"""Runs NLU training jobs in the background and keeps the bot's FAQ answers in memory.

Training is CPU work: it runs in a thread, reports progress to the job row (throttled), and never blocks the
event loop. The new version is evaluated on a held-out split before anyone switches it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.state import AppState, EngineHolder
from core.audit import service as audit
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.events import EventBus, emit
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
                version = await asyncio.to_thread(train_sync, data, progress, activate=activate)
                versions: list[Any] = getattr(engine, "list_versions", list)()
                manifest: dict[str, Any] = next((v.manifest for v in versions if v.version == version), {})
                report["cross_validation"] = manifest.get("cross_validation", {})
                report["train_seconds"] = manifest.get("train_seconds")
            else:
                version = await engine.train(data, progress)
            saver.cancel()
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
    active: bool
    created_at: str | None
    n_examples: int | None
    n_intents: int | None
    threshold: float | None
    train_seconds: float | None
    size_bytes: int | None
    cross_validation: dict[str, Any]


async def model_versions(state: AppState) -> list[VersionRead] | None:
    """Newest first; None when the engine keeps its models itself (Rasa, the keyword engine)."""
    engine = state.nlu.current
    if not callable(getattr(engine, "list_versions", None)):
        return None
    versions = await asyncio.to_thread(engine.list_versions)  # type: ignore[attr-defined]
    return [VersionRead(version=v.version, active=v.active, created_at=v.manifest.get("created_at"),
                        n_examples=v.manifest.get("n_examples"), n_intents=len(v.manifest.get("intents", [])),
                        threshold=v.manifest.get("threshold"), train_seconds=v.manifest.get("train_seconds"),
                        size_bytes=v.manifest.get("size_bytes"),
                        cross_validation=v.manifest.get("cross_validation") or {})
            for v in reversed(versions)]


def versions_engine(state: AppState) -> Any:
    """The active engine when it keeps model versions itself (the embedded one); else a clear 409."""
    engine = state.nlu.current
    if not hasattr(engine, "list_versions"):
        raise ConflictError(f"the {engine.name} engine keeps its models itself; versions are managed there")
    return engine


async def activate_version(state: AppState, session: AsyncSession, actor: User, version: str) -> None:
    """Switch a model version on here, and (through the event) on every other instance."""
    engine = versions_engine(state)
    try:
        await asyncio.to_thread(engine.activate, version)
    except (ModelNotFoundError, FileNotFoundError, ValueError) as exc:
        raise NotFoundError(f"model version {version!r} not found") from exc
    audit.record(session, actor, "nlu.activate", "nlu_version", version)
    emit(session, MODEL_TOPIC, {"version": version})


async def rollback_version(state: AppState, session: AsyncSession, actor: User) -> str:
    """Switch back to the version active before the current one; returns it."""
    engine = versions_engine(state)
    try:
        previous: str = await asyncio.to_thread(engine.rollback)
    except ModelNotFoundError as exc:
        raise ConflictError(str(exc)) from exc
    audit.record(session, actor, "nlu.rollback", "nlu_version", previous)
    emit(session, MODEL_TOPIC, {"version": previous})
    return previous


async def follow_model_switches(state: AppState) -> None:
    """Load the version another instance switched on (model dirs are shared between instances)."""
    async with state.bus.subscribe(MODEL_TOPIC) as events:
        while True:
            await events.get()
            sync = getattr(state.nlu.current, "sync_active", None)
            if callable(sync):
                try:
                    await asyncio.to_thread(sync)
                except Exception:
                    log.exception("could not load the model version another instance activated")
            if state.freeze_heap:
                # The previous model is garbage now: one full pass frees it, and the new one is frozen.
                gc.unfreeze()
                gc.collect()
                gc.freeze()
