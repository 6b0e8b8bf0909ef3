"""Queries for the model version all instances should use and what each instance reports it uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import utcnow
from core.nlu_admin.models import NluActiveModel, NluInstance

ACTIVE_ROW = 1


def _upsert(session: AsyncSession, model: Any, values: dict[str, Any], update: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(**values)
    return stmt.on_conflict_do_update(index_elements=["id"], set_=update) if update else \
        stmt.on_conflict_do_nothing(index_elements=["id"])


async def active_version(session: AsyncSession) -> str | None:
    return await session.scalar(select(NluActiveModel.version).where(NluActiveModel.id == ACTIVE_ROW))


async def set_active_version(session: AsyncSession, version: str, *, only_if_unset: bool = False,
                             now: datetime | None = None) -> None:
    """Record the version every instance should use (`only_if_unset`: the first instance on a new database)."""
    values = {"id": ACTIVE_ROW, "version": version, "changed_at": now or utcnow()}
    await session.execute(_upsert(session, NluActiveModel, values,
                                  {} if only_if_unset else {"version": version, "changed_at": values["changed_at"]}))


async def report_instance(session: AsyncSession, instance: str, *, host: str, pid: int, engine: str,
                          version: str | None, started_at: datetime, now: datetime | None = None) -> None:
    now = now or utcnow()
    values = {"id": instance, "host": host[:255], "pid": pid, "engine": engine, "version": version,
              "started_at": started_at, "seen_at": now}
    await session.execute(_upsert(session, NluInstance, values, {"engine": engine, "version": version,
                                                                  "seen_at": now}))


async def list_instances(session: AsyncSession, seen_since: datetime) -> Sequence[NluInstance]:
    return (await session.scalars(select(NluInstance).where(NluInstance.seen_at >= seen_since)
                                  .order_by(NluInstance.started_at, NluInstance.id))).all()


async def forget_instance(session: AsyncSession, instance: str) -> None:
    await session.execute(delete(NluInstance).where(NluInstance.id == instance))


async def forget_instances(session: AsyncSession, seen_before: datetime) -> None:
    """Instances that stopped reporting long ago (crashed, or gone for good)."""
    await session.execute(delete(NluInstance).where(NluInstance.seen_at < seen_before))
