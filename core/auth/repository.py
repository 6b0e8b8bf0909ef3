"""Queries of the sign-in throttle."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth.models import LoginThrottle, ThrottleScope


async def find(session: AsyncSession, pairs: Sequence[tuple[ThrottleScope, str]]) -> list[LoginThrottle]:
    """The rows of these (scope, key) pairs that exist, in one query."""
    stmt = select(LoginThrottle).where(or_(*(and_(LoginThrottle.scope == s, LoginThrottle.key == k)
                                             for s, k in pairs)))
    return list((await session.scalars(stmt)).all())


async def lock_row(session: AsyncSession, scope: ThrottleScope, key: str, now: datetime) -> LoginThrottle:
    """The row of (scope, key), created when missing and locked (FOR UPDATE) until the transaction ends.

    Insert-or-ignore first, so two workers counting the first failure of one key at once meet on the row lock
    instead of one of them failing on the unique key.
    """
    values = {"scope": scope, "key": key, "failures": 0, "last_failure_at": now}
    bind = session.get_bind()
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(LoginThrottle).values(**values).on_conflict_do_nothing(
        index_elements=[LoginThrottle.scope, LoginThrottle.key]))
    stmt = (select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
            .with_for_update().execution_options(populate_existing=True))
    return (await session.scalars(stmt)).one()


async def remove(session: AsyncSession, scope: ThrottleScope, key: str) -> bool:
    result = await session.execute(delete(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key))
    return bool(getattr(result, "rowcount", 0))


async def purge_stale(session: AsyncSession, forgotten_before: datetime, now: datetime) -> None:
    """Drop rows whose failures are forgotten and that hold no delay or lock any more.

    Rows another transaction holds are skipped (SKIP LOCKED), so the purge never waits for, or deadlocks with,
    a concurrent failure that is counting on one of them.
    """
    stale = (select(LoginThrottle.id).where(
        LoginThrottle.last_failure_at < forgotten_before,
        or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now),
        or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now))
        .limit(1000).with_for_update(skip_locked=True))
    await session.execute(delete(LoginThrottle).where(LoginThrottle.id.in_(stale)))


async def restricted_accounts(session: AsyncSession, now: datetime) -> Sequence[LoginThrottle]:
    """Accounts locked or made to wait right now."""
    stmt = select(LoginThrottle).where(LoginThrottle.scope == ThrottleScope.account,
                                       or_(LoginThrottle.locked_until > now, LoginThrottle.blocked_until > now))
    return (await session.scalars(stmt.order_by(LoginThrottle.key))).all()
