"""Queries of the email channel: checkpoints, and which mailbox a conversation came through."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.email.models import EmailCheckpoint
from core.db.base import utcnow
from core.tickets.models import Message


async def get_checkpoint(session: AsyncSession, mailbox: str) -> EmailCheckpoint | None:
    return await session.get(EmailCheckpoint, mailbox)


async def save_checkpoint(session: AsyncSession, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    """Advance the checkpoint; never moves back under the same UIDVALIDITY."""
    row = await session.get(EmailCheckpoint, mailbox, with_for_update=True)
    if row is None:
        session.add(EmailCheckpoint(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid,
                                    updated_at=utcnow()))
        return
    if row.uidvalidity == uidvalidity and row.last_uid >= last_uid:
        return
    row.uidvalidity = uidvalidity
    row.last_uid = last_uid
    row.updated_at = utcnow()


async def mailbox_of(session: AsyncSession, channel: str, external_ids: Sequence[str]) -> str | None:
    """The mailbox the newest of these inbound messages arrived in (replies go out from its address)."""
    if not external_ids:
        return None
    rows = (await session.scalars(
        select(Message.extra).where(Message.channel == channel, Message.external_message_id.in_(list(external_ids)))
        .order_by(Message.id.desc()).limit(1)
    )).all()
    for extra in rows:
        mailbox = (extra or {}).get("mailbox")
        if isinstance(mailbox, str):
            return mailbox
    return None
