"""Model versions: which one every instance parses with, admins' activation and rollback, and each instance's
follower that keeps it on the version the database names.

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
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.errors import ConflictError, NotFoundError
from core.events import BRIDGE_TOPIC, EventBus, Topic, emit
from core.jobs import Every, Job, JobContext, JobRegistry
from core.nlu_admin import repository as nlu_repo
from core.nlu_admin.model_store import ModelStore, stamp_activation
from core.nlu_admin.models import NluInstance
from core.nlu_admin.schemas import VersionRead
from core.users.models import User
from nlu.errors import ModelNotFoundError
from nlu.protocol import EngineHolder, VersionedEngine

log = logging.getLogger(__name__)
MODEL_TOPIC = Topic.NLU_MODEL  # a model version was switched on: other instances load it too
MODEL_SYNC_JOB = "nlu-model-sync"


class ModelSync:
    """Keeps this instance on the model version `nlu_active_model` names, and reports what it uses.

    Looks when a switch is announced, when the live bridge changes state, and every `interval` seconds (one
    primary-key read: the registered job `job()` returns); reports to `nlu_instances` when its version
    changes and every `report_every` seconds.
    `lock` is held by whatever switches this instance's model (a check, an admin's switch, a training job).
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], engine: EngineHolder, bus: EventBus,
                 instance: str, *, interval: float, report_every: float = 30.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.bus = bus
        self.clock = clock
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
        self.started_at = clock.now()
        self._reported: tuple[str, str | None] | None = None
        self._reported_at = 0.0
        self._wake: Callable[[], None] | None = None  # runs the follower job's check now (set by `job`)
        # Model versions in the database (no shared disk): fetched into the local cache before they are loaded.
        self.models: ModelStore | None = None

    @property
    def loaded(self) -> str | None:
        engine = self.engine.versioned
        return engine.active_version if engine is not None else None

    @property
    def versioned(self) -> bool:
        return self.engine.versioned is not None

    def health(self) -> dict[str, Any]:
        in_sync = not self.versioned or self.wanted is None or self.wanted == self.loaded
        return {"engine": self.engine.current.name, "version": self.loaded, "active": self.wanted,
                "in_sync": in_sync, "instance": self.instance, "switches": self.switches,
                "checked_at": self.checked_at.isoformat() if self.checked_at else None,
                "last_error": self.last_error}

    def loaded_changed(self) -> None:
        """This instance switched by itself (an admin's request here): check and report it now."""
        if self._wake is not None:
            self._wake()

    def job(self, jobs: JobRegistry) -> Job:
        """The model-switch follower as a registered job: a check every `interval` seconds, and at once when a
        switch is announced, the live bridge changes state, or this instance switched by itself.

        A failing check (a version this instance does not have, the database away) is reported in the NLU
        health and retried at the next interval or announcement, never backed off: a later switch to a version
        this instance has must be followed at once.
        """
        self._wake = lambda: jobs.wake(MODEL_SYNC_JOB)

        async def tick(ctx: JobContext) -> None:
            await self.check()

        def details() -> dict[str, Any]:
            return {"version": self.loaded, "active": self.wanted, "sync_error": self.last_error}

        # The app checks once before it serves requests; the job's first look is one interval later.
        return Job(MODEL_SYNC_JOB, tick=tick, schedule=Every(self.interval, first_delay=self.interval),
                   wake_topics=(MODEL_TOPIC, BRIDGE_TOPIC), details=details)

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
        engine = versions_engine(self)
        async with self.lock:
            await engine.activate_version(version)
            async with self.sessionmaker() as session, session.begin():
                await nlu_repo.set_active_version(session, version, now=self.clock.now())
        self.loaded_changed()

    async def _converge(self) -> None:
        loaded = self.loaded
        async with self.sessionmaker() as session:
            wanted = await nlu_repo.active_version(session)
            if wanted is None and self.versioned and loaded:
                # The first instance on this database: the version it loaded is the one everyone uses.
                await nlu_repo.set_active_version(session, loaded, only_if_unset=True, now=self.clock.now())
                await session.commit()
                wanted = await nlu_repo.active_version(session)
                if wanted == loaded:  # the start of the shared history rollback goes by
                    await stamp_activation(session, loaded, self.clock.now())
                    await session.commit()
        self.wanted, self.checked_at = wanted, self.clock.now()
        engine = self.engine.versioned
        if engine is None or wanted is None or wanted == loaded:
            return
        if self.models is not None:
            await self.models.ensure_local(wanted)  # trained on another instance: its files come from the database
        await engine.follow_version(wanted)
        self.switches += 1
        log.info("nlu model switched to the active version", extra={"version": wanted, "was": loaded})
        if self.freeze_heap:
            # The previous model is garbage now: one full pass frees it, and the new one is frozen.
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    async def _report(self) -> None:
        key = (self.engine.current.name, self.loaded)
        if key == self._reported and self.clock.monotonic() - self._reported_at < self.report_every:
            return
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            await nlu_repo.report_instance(session, self.instance, host=socket.gethostname(), pid=os.getpid(),
                                           engine=key[0], version=key[1], started_at=self.started_at, now=now)
            await nlu_repo.forget_instances(session, now - timedelta(days=1))
        self._reported, self._reported_at = key, self.clock.monotonic()

    async def forget(self) -> None:
        """A clean stop: this instance no longer serves anything."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3), self.sessionmaker() as session, session.begin():
                await nlu_repo.forget_instance(session, self.instance)


def versions_engine(sync: ModelSync) -> VersionedEngine:
    """The active engine when it keeps model versions itself; else a clear 409."""
    engine = sync.engine.versioned
    if engine is None:
        raise ConflictError(f"the {sync.engine.current.name} engine keeps its models itself; "
                            "versions are managed there")
    return engine


async def model_versions(sync: ModelSync, session: AsyncSession | None = None) -> list[VersionRead] | None:
    """Newest first; None when the engine keeps no versions (the keyword engine).

    With a session, `active` is the version in the database and each version lists the instances using it.
    """
    engine = sync.engine.versioned
    if engine is None:
        return None
    if sync.models is not None:
        await sync.models.ensure_all_local(session)  # versions trained elsewhere are listed (and usable) here
    versions = await engine.saved_versions()
    loaded = engine.active_version
    active: str | None = None
    serving: dict[str, list[str]] = {}
    if session is not None:
        active = await nlu_repo.active_version(session)
        for row in await nlu_repo.list_instances(session, sync.clock.now() - sync.stale_after):
            if row.version:
                serving.setdefault(row.version, []).append(row.id)
    return [VersionRead(version=v.version, active=v.version == active if active else v.active,
                        loaded_here=v.version == loaded, instances=serving.get(v.version, []),
                        created_at=v.manifest.get("created_at"),
                        n_examples=v.manifest.get("n_examples"), n_intents=len(v.manifest.get("intents", [])),
                        threshold=v.manifest.get("threshold"), target_precision=v.manifest.get("target_precision"),
                        train_seconds=v.manifest.get("train_seconds"), size_bytes=v.manifest.get("size_bytes"),
                        cross_validation=v.manifest.get("cross_validation") or {})
            for v in reversed(versions)]


async def list_versions(sync: ModelSync, session: AsyncSession) -> list[VersionRead]:
    """What admins see: every saved version; a clear 409 when the engine keeps no versions."""
    versions = await model_versions(sync, session)
    if versions is None:
        versions_engine(sync)  # raises the 409 that says why
    return versions or []


async def instances_and_active(sync: ModelSync, session: AsyncSession) -> tuple[Sequence[NluInstance], str | None]:
    """The instances that reported recently, and the active version in the database."""
    rows = await nlu_repo.list_instances(session, sync.clock.now() - sync.stale_after)
    return rows, await nlu_repo.active_version(session)


async def release_connection(session: AsyncSession) -> None:
    """End the request's transaction (its reads: who is signed in) before waiting for the model lock.

    The lock's holder (the periodic check, a training job) needs a connection while it holds it; a request that
    waited for the lock while holding one deadlocked with it on SQLite, whose pool is one connection.
    """
    await session.commit()


async def activate_version(sync: ModelSync, session: AsyncSession, actor: User, version: str) -> None:
    """Switch a model version on here, in the database, and (through the event) on every other instance.

    Commits: the periodic check must never read the old version back while this instance runs the new one.
    """
    engine = versions_engine(sync)
    await release_connection(session)
    async with sync.lock:
        try:
            if sync.models is not None:
                await sync.models.ensure_local(version, session)
            await engine.activate_version(version)
        except (ModelNotFoundError, FileNotFoundError, ValueError) as exc:
            raise NotFoundError(f"model version {version!r} not found") from exc
        await nlu_repo.set_active_version(session, version, now=sync.clock.now())
        audit.record(session, actor, "nlu.activate", "nlu_version", version)
        emit(session, MODEL_TOPIC, {"version": version})
        await session.commit()
    sync.loaded_changed()


async def rollback_version(sync: ModelSync, session: AsyncSession, actor: User) -> str:
    """Switch back to the version active before the current one; returns it (committed, like activation)."""
    engine = versions_engine(sync)
    await release_connection(session)
    async with sync.lock:
        previous = None
        if sync.models is not None:
            # The history every instance shares: whichever instance switched the versions on.
            current = await nlu_repo.active_version(session) or engine.active_version
            previous = await sync.models.rollback_target(current, session)
            if previous is not None:
                await sync.models.ensure_local(previous, session)
                await engine.activate_version(previous)
                if current is not None:
                    await ModelStore.rolled_back_from(session, current)
        if previous is None:  # nothing published yet (a deployment from before): this instance's own history
            try:
                previous = await engine.rollback_version()
            except ModelNotFoundError as exc:
                raise ConflictError(str(exc)) from exc
        await nlu_repo.set_active_version(session, previous, now=sync.clock.now())
        audit.record(session, actor, "nlu.rollback", "nlu_version", previous)
        emit(session, MODEL_TOPIC, {"version": previous})
        await session.commit()
    sync.loaded_changed()
    return previous
