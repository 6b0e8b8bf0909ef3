"""Queries of the email channel: checkpoints, and which mailbox a conversation came through."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cursors import repository as cursors
from core.db.base import utcnow
from core.tickets.models import Message

CURSOR_CHANNEL = "email"


@dataclass(frozen=True)
class Checkpoint:
    """Per-mailbox IMAP checkpoint: the last UID whose ingest transaction committed, under one UIDVALIDITY (kept
    as the mailbox's cursor in core's channel_cursors)."""

    uidvalidity: int
    last_uid: int
    updated_at: datetime


def _decode(value: str) -> tuple[int, int] | None:
    try:
        data = json.loads(value)
        return int(data["uidvalidity"]), int(data["last_uid"])
    except (ValueError, KeyError, TypeError):
        return None


async def get_checkpoint(session: AsyncSession, mailbox: str) -> Checkpoint | None:
    row = await cursors.get(session, CURSOR_CHANNEL, mailbox)
    decoded = _decode(row.value) if row is not None else None
    if row is None or decoded is None:
        return None  # none, or one this version cannot read: the mailbox starts as on its first start
    return Checkpoint(uidvalidity=decoded[0], last_uid=decoded[1], updated_at=row.updated_at)


async def save_checkpoint(session: AsyncSession, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    """Advance the checkpoint; never moves back under the same UIDVALIDITY."""
    row = await cursors.get_for_update(session, CURSOR_CHANNEL, mailbox)
    current = _decode(row.value) if row is not None else None
    if current is not None and current[0] == uidvalidity and current[1] >= last_uid:
        return
    await cursors.put(session, CURSOR_CHANNEL, mailbox,
                      json.dumps({"uidvalidity": uidvalidity, "last_uid": last_uid}), utcnow(), current=row)


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
