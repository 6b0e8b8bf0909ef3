"""Agents' corrections of the bot's intent on a customer message.

A correction is kept on the message itself (`Message.extra["intent_correction"]`) with state `pending` until
an admin accepts it as a training example or rejects it; the NLU admin's suggested-examples list reads them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.audit import service as audit
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.tickets.models import AuthorKind, Message
from core.users.models import User

KEY = "intent_correction"
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def correction_of(message: Message) -> dict[str, Any] | None:
    value = (message.extra or {}).get(KEY)
    return value if isinstance(value, dict) else None


async def correct_intent(session: AsyncSession, message_id: int, ticket_id: int, intent: str, actor: User
                         ) -> Message:
    """Record that `message` should have been read as `intent` (a pending suggested training example)."""
    intent = intent.strip()
    if not INTENT_NAME.match(intent):
        raise ValidationFailedError("an intent name is lower-case latin letters, digits and underscores",
                                    intent=intent)
    message = await session.get(Message, message_id)
    if message is None or message.ticket_id != ticket_id:
        raise NotFoundError(f"message {message_id} not found on this ticket")
    if message.author_kind != AuthorKind.customer:
        raise ConflictError("only customer messages carry an intent to correct")
    if not message.text.strip():
        raise ConflictError("this message has no text to learn from")
    # A new dict, so the JSON column sees the change.
    message.extra = {**(message.extra or {}), KEY: {
        "intent": intent, "was": message.intent, "confidence": message.confidence, "status": "pending",
        "by": actor.id, "at": utcnow().isoformat(),
    }}
    audit.record(session, actor, "message.intent_correction", "message", message.id, intent=intent,
                 was=message.intent)
    return message


async def pending(session: AsyncSession, limit: int = 200) -> Sequence[Message]:
    """Customer messages whose intent an agent corrected and nobody has reviewed yet."""
    stmt = (select(Message)
            .where(Message.author_kind == AuthorKind.customer,
                   Message.extra[(KEY, "status")].as_string() == "pending")
            .options(joinedload(Message.ticket)).order_by(Message.id.desc()).limit(limit))
    return (await session.scalars(stmt)).all()


async def review(session: AsyncSession, message_id: int, accept: bool, actor: User) -> Message:
    message = await session.get(Message, message_id)
    correction = correction_of(message) if message is not None else None
    if message is None or correction is None:
        raise NotFoundError(f"no correction on message {message_id}")
    message.extra = {**message.extra, KEY: {**correction, "status": "accepted" if accept else "rejected",
                                            "reviewed_by": actor.id, "reviewed_at": utcnow().isoformat()}}
    audit.record(session, actor, "message.intent_correction." + ("accept" if accept else "reject"), "message",
                 message.id, intent=correction.get("intent"))
    return message
