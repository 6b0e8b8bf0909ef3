"""Every query of the weekly summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.summaries.models import SETTINGS_ROW, MailStatus, SummaryMail, SummarySettingsRow
from core.users.models import Role, User


async def settings_row(session: AsyncSession, *, lock: bool = False) -> SummarySettingsRow | None:
    stmt = select(SummarySettingsRow).where(SummarySettingsRow.id == SETTINGS_ROW)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def recipients(session: AsyncSession) -> Sequence[User]:
    """Active supervisors and admins, by name."""
    stmt = (select(User).where(User.is_active.is_(True), User.role.in_((Role.supervisor, Role.admin)))
            .order_by(User.name, User.id))
    return (await session.scalars(stmt)).all()


async def queued_users(session: AsyncSession, week_start: date) -> set[int]:
    rows = await session.scalars(select(SummaryMail.user_id).where(SummaryMail.week_start == week_start))
    return set(rows)


async def recent_mails(session: AsyncSession, limit: int) -> Sequence[SummaryMail]:
    stmt = select(SummaryMail).order_by(SummaryMail.week_start.desc(), SummaryMail.id.desc()).limit(limit)
    return (await session.scalars(stmt)).all()


async def due_ids(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Mails to send now: queued and due, or stuck in `sending` past their claim (the sender died mid-send)."""
    stmt = (select(SummaryMail.id)
            .where(or_(and_(SummaryMail.status == MailStatus.queued, SummaryMail.next_attempt_at <= now),
                       and_(SummaryMail.status == MailStatus.sending, SummaryMail.lease_until < now)))
            .order_by(SummaryMail.next_attempt_at, SummaryMail.id).limit(limit))
    return list((await session.scalars(stmt)).all())


async def claim(session: AsyncSession, mail_id: int, runner_id: str, now: datetime, lease_until: datetime
                ) -> SummaryMail | None:
    """Take one mail for sending (one statement: of two senders racing, one wins); None if another took it."""
    result = await session.execute(
        update(SummaryMail)
        .where(SummaryMail.id == mail_id,
               or_(and_(SummaryMail.status == MailStatus.queued, SummaryMail.next_attempt_at <= now),
                   and_(SummaryMail.status == MailStatus.sending, SummaryMail.lease_until < now)))
        .values(status=MailStatus.sending, claimed_by=runner_id, lease_until=lease_until,
                attempts=SummaryMail.attempts + 1)
        .execution_options(synchronize_session=False))
    if getattr(result, "rowcount", 0) != 1:
        return None
    return await session.get(SummaryMail, mail_id, populate_existing=True)


async def finish(session: AsyncSession, mail_id: int, runner_id: str, *, status: MailStatus, now: datetime,
                 error: str | None = None, next_attempt_at: datetime | None = None) -> bool:
    """Record how a claimed send ended (only by the sender that holds the claim)."""
    values: dict[str, object] = {"status": status, "lease_until": None, "last_error": error}
    if status == MailStatus.sent:
        values["sent_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = await session.execute(
        update(SummaryMail).where(SummaryMail.id == mail_id, SummaryMail.claimed_by == runner_id,
                                  SummaryMail.status == MailStatus.sending)
        .values(**values).execution_options(synchronize_session=False))
    return getattr(result, "rowcount", 0) == 1
