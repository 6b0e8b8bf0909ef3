"""Model versions in the database: the instance that trains a version publishes its files, every other instance
fetches them into its own model directory (a cache) before loading it. No disk is shared between instances.

The embedded engine keeps a version as `<model_dir>/<version>/{model.joblib, manifest.json}`; this module copies
those two files to and from `nlu_model_versions` and knows nothing else of the engine. The database is as trusted
as the model directory was (the engine unpickles what it loads): only the instances write it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.base import utcnow
from core.nlu_admin import repository as nlu_repo
from core.nlu_admin.models import NluModelVersion

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
ACTIVE_FILE = "ACTIVE"
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


class ModelStore:
    """Publishes this instance's versions and fetches the others' (embedded engine; `model_dir` is its folder)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], model_dir: Path, engine: str = "embedded"):
        self.sessionmaker = sessionmaker
        self.model_dir = Path(model_dir)
        self.engine = engine

    def _local(self, version: str) -> Path | None:
        if not _VERSION.match(version) or ".." in version:
            return None
        path = self.model_dir / version
        return path if (path / MODEL_FILE).is_file() and (path / MANIFEST_FILE).is_file() else None

    async def publish(self, version: str) -> bool:
        """Store a version trained here (its files) for the other instances; False if it was there already."""
        path = await asyncio.to_thread(self._local, version)
        if path is None:
            raise FileNotFoundError(f"model version {version!r} is not in {self.model_dir}")
        async with self.sessionmaker() as session:
            if await session.get(NluModelVersion, version) is not None:
                return False
        model, manifest = await asyncio.to_thread(_read, path)
        try:
            async with self.sessionmaker.begin() as session:
                active = await nlu_repo.active_version(session)
                session.add(NluModelVersion(version=version, engine=self.engine, manifest=manifest, model=model,
                                            activated_at=utcnow() if active == version else None))
        except IntegrityError:  # published by another process at the same moment
            return False
        log.info("nlu model version published", extra={"version": version, "bytes": len(model)})
        return True

    async def publish_local(self) -> int:
        """Publish every version this instance has and the database lacks (a deployment that used to share a
        disk, or the model the first start trained); returns how many."""
        names = await asyncio.to_thread(self._local_versions)
        async with self.sessionmaker() as session:
            known = set((await session.scalars(select(NluModelVersion.version))).all())
        return sum([await self.publish(name) for name in names if name not in known])

    def _local_versions(self) -> list[str]:
        if not self.model_dir.is_dir():
            return []
        return sorted(p.name for p in self.model_dir.iterdir() if p.is_dir() and self._local(p.name) is not None)

    @contextlib.asynccontextmanager
    async def _session(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's session when it holds one (a request: on SQLite the pool is that one connection), else
        a short one of our own."""
        if session is not None:
            yield session
            return
        async with self.sessionmaker() as own:
            yield own

    async def ensure_local(self, version: str, session: AsyncSession | None = None) -> bool:
        """Fetch `version` into the model dir unless it is there; True if fetched, False if it was local.
        FileNotFoundError when neither this instance nor the database has it."""
        if await asyncio.to_thread(self._local, version) is not None:
            return False
        if not _VERSION.match(version) or ".." in version:
            raise FileNotFoundError(f"invalid model version {version[:80]!r}")
        async with self._session(session) as s:
            row = (await s.execute(select(NluModelVersion.model, NluModelVersion.manifest)
                                   .where(NluModelVersion.version == version))).first()
        if row is None:
            raise FileNotFoundError(f"model version {version!r} is neither here nor in the database")
        await asyncio.to_thread(_write, self.model_dir, version, row[0], row[1])
        log.info("nlu model version fetched from the database", extra={"version": version})
        return True

    async def ensure_all_local(self, session: AsyncSession | None = None) -> int:
        """Fetch every published version this instance lacks (the admins' version list shows them all)."""
        async with self._session(session) as s:
            names = (await s.scalars(select(NluModelVersion.version))).all()
        have = set(await asyncio.to_thread(self._local_versions))
        return sum([await self.ensure_local(name, session) for name in names if name not in have])

    async def prime(self) -> str | None:
        """Before the engine starts: fetch the version the database names as active and point this instance's
        ACTIVE at it, so a new instance (empty model dir) loads it instead of training a model of its own.
        Returns the version, or None when the database has none yet."""
        async with self.sessionmaker() as session:
            version = await nlu_repo.active_version(session)
        if version is None:
            return None
        try:
            await self.ensure_local(version)
        except FileNotFoundError:
            return None  # active before versions were published (an older deployment): its files are local
        await asyncio.to_thread(_write_text, self.model_dir / ACTIVE_FILE, version)
        return version

    async def rollback_target(self, current: str | None, session: AsyncSession | None = None) -> str | None:
        """The version switched on last before `current` (whichever instance switched it), or None."""
        async with self._session(session) as session:
            since = None
            if current is not None:
                since = await session.scalar(select(NluModelVersion.activated_at)
                                             .where(NluModelVersion.version == current))
            query = select(NluModelVersion.version).where(NluModelVersion.activated_at.is_not(None))
            if current is not None:
                query = query.where(NluModelVersion.version != current)
            if since is not None:
                query = query.where(NluModelVersion.activated_at <= since)
            return await session.scalar(query.order_by(NluModelVersion.activated_at.desc()).limit(1))

    @staticmethod
    async def rolled_back_from(session: AsyncSession, version: str) -> None:
        """`version` leaves the history: a second rollback goes one further back, as on one machine."""
        await session.execute(update(NluModelVersion).where(NluModelVersion.version == version)
                              .values(activated_at=None))


async def stamp_activation(session: AsyncSession, version: str, now: datetime) -> None:
    """Record when `version` was switched on (the rollback order); nothing for a version never published."""
    await session.execute(update(NluModelVersion).where(NluModelVersion.version == version)
                          .values(activated_at=now))


def _read(path: Path) -> tuple[bytes, dict[str, Any]]:
    manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    return (path / MODEL_FILE).read_bytes(), manifest if isinstance(manifest, dict) else {}


def _write(model_dir: Path, version: str, model: bytes, manifest: dict[str, Any]) -> None:
    """Into a temporary folder, then renamed into place: the engine never sees half a version."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=".fetch-"))
    try:
        (tmp / MODEL_FILE).write_bytes(model)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, model_dir / version)
        except OSError:  # fetched by another process meanwhile
            if not (model_dir / version / MODEL_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
