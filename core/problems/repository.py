"""The queries of typical-problem analysis: alerts, the not-understood messages, the handled ones."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.problems.models import NOT_UNDERSTOOD_SQL, HandledMessage, ProblemAlert
from core.tickets.models import Message

CHUNK = 5000  # ids per statement: below every database's bound-parameter limit


def _not_understood(session: AsyncSession) -> str:
    return NOT_UNDERSTOOD_SQL["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"]


async def not_understood(session: AsyncSession, start: datetime, end: datetime, limit: int
                         ) -> Sequence[tuple[int, str, datetime]]:
    """(id, text, created_at) of the most recent `limit` not-understood customer messages in [start, end), from
    the partial index ix_messages_not_understood (newest first)."""
    rows = (await session.execute(
        select(Message.id, Message.text, Message.created_at)
        .where(text(_not_understood(session)), Message.created_at >= start, Message.created_at < end)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    )).all()
    return [(int(i), str(t or ""), c) for i, t, c in rows]


async def not_understood_among(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    """Of `ids`, the not-understood customer messages, with their texts."""
    found: dict[int, str] = {}
    wanted = list(ids)
    for i in range(0, len(wanted), CHUNK):  # below every database's bound-parameter limit
        rows = (await session.execute(
            select(Message.id, Message.text)
            .where(text(_not_understood(session)), Message.id.in_(wanted[i:i + CHUNK])))).all()
        found.update({int(m): str(t or "") for m, t in rows})
    return found


async def handled(session: AsyncSession, ids: Collection[int]) -> dict[int, HandledMessage]:
    found: dict[int, HandledMessage] = {}
    wanted = list(ids)
    for i in range(0, len(wanted), CHUNK):
        rows = await session.scalars(select(HandledMessage).where(HandledMessage.message_id.in_(wanted[i:i + CHUNK])))
        found.update({row.message_id: row for row in rows})
    return found


async def mark_handled(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Insert or overwrite the handled marks (the latest intent made of a message wins)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for i in range(0, len(rows), CHUNK // 5):  # five parameters a row
        stmt = insert(HandledMessage).values(list(rows[i:i + CHUNK // 5]))
        stmt = stmt.on_conflict_do_update(index_elements=[HandledMessage.message_id], set_={
            "intent": stmt.excluded.intent, "example": stmt.excluded.example,
            "handled_by": stmt.excluded.handled_by, "handled_at": stmt.excluded.handled_at})
        await session.execute(stmt)


# --- alerts ---------------------------------------------------------------------------------------------------


async def active_alerts(session: AsyncSession) -> Sequence[ProblemAlert]:
    return (await session.scalars(
        select(ProblemAlert).where(ProblemAlert.resolved_at.is_(None))
        .order_by(ProblemAlert.ratio.desc(), ProblemAlert.id))).all()


async def active_alerts_locked(session: AsyncSession) -> Sequence[ProblemAlert]:
    return (await session.scalars(
        select(ProblemAlert).where(ProblemAlert.resolved_at.is_(None)).order_by(ProblemAlert.id)
        .with_for_update())).all()


async def alerts(session: AsyncSession, *, since: datetime | None, before_id: int | None, limit: int
                 ) -> Sequence[ProblemAlert]:
    """Alert history, newest first (keyset on id)."""
    query = select(ProblemAlert)
    if since is not None:
        query = query.where((ProblemAlert.resolved_at.is_(None)) | (ProblemAlert.resolved_at >= since))
    if before_id is not None:
        query = query.where(ProblemAlert.id < before_id)
    return (await session.scalars(query.order_by(ProblemAlert.id.desc()).limit(limit))).all()


async def raise_alert(session: AsyncSession, values: dict[str, object]) -> ProblemAlert | None:
    """Insert an active alert unless the same (dimension, key) has one already (then None): the unique partial
    index decides, so two evaluations racing each other raise it once."""
    dialect = session.get_bind().dialect.name
    stmt = ((pg_insert if dialect == "postgresql" else sqlite_insert)(ProblemAlert).values(**values)
            .on_conflict_do_nothing(index_elements=[ProblemAlert.dimension, ProblemAlert.key],
                                    index_where=ProblemAlert.resolved_at.is_(None))
            .returning(ProblemAlert.id))
    new_id = await session.scalar(stmt)
    if new_id is None:
        return None
    return await session.get(ProblemAlert, new_id)


async def resolve_alert(session: AsyncSession, alert_id: int, at: datetime) -> None:
    await session.execute(update(ProblemAlert).where(ProblemAlert.id == alert_id).values(resolved_at=at))
