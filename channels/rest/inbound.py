"""Translation between the REST channel's wire format and the core: a posted message to an InboundMessage,
an ingest result and the delivered replies back to the wire."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from channels.rest.adapter import reply_type
from channels.rest.schemas import RestMessageAccepted, RestMessageCreate, RestReply, RestReplyPage
from core.attachments.policy import AttachmentPolicy, screen
from core.errors import ValidationFailedError
from core.ingest.schemas import AttachmentInfo, InboundMessage, IngestResult, SenderInfo
from core.outbox import service as outbox_service
from core.outbox.models import OutboxMessage
from core.tickets.models import format_ticket_number

CHANNEL = "rest"


def parse_message(raw: bytes) -> RestMessageCreate:
    """The posted body, validated (pydantic's ValidationError for a body that does not match)."""
    return RestMessageCreate.model_validate_json(raw)


def to_inbound(body: RestMessageCreate, policy: AttachmentPolicy, *, trusted: bool = False) -> InboundMessage:
    """The core's message of a posted one; the thread is the given thread id, else the sender.

    `trusted`: the integration key is one whose sender data the operator vouches for (RestChannelSettings.
    trusted_keys): the sender's email and phone are verified and link the customer across channels.

    The attachment policy of every channel applies: a refused file leaves the message in, listed with the reason.

    Raises:
        ValidationFailedError: the message has neither text nor attachments.
    """
    if not body.text.strip() and not body.attachments:
        raise ValidationFailedError("a message needs text or at least one attachment")
    attachments, rejected = screen([AttachmentInfo(**a.model_dump()) for a in body.attachments], policy)
    return InboundMessage(
        channel=CHANNEL, external_message_id=body.external_message_id,
        sender=SenderInfo(external_id=body.sender.external_id, name=body.sender.name, email=body.sender.email,
                          phone=body.sender.phone, verified=trusted and bool(body.sender.email or body.sender.phone)),
        text=body.text,
        attachments=tuple(attachments),
        thread_key=body.thread_id or body.sender.external_id,
        language_hint=body.language,
        extra={"rejected_attachments": rejected} if rejected else {},
    )


def accepted(result: IngestResult) -> RestMessageAccepted:
    return RestMessageAccepted(ticket_number=result.ticket_number, ticket_id=result.ticket_id,
                               message_id=result.message_id, created=result.created, action=result.action,
                               reply_message_ids=result.reply_message_ids)


def reply_of(row: OutboxMessage) -> RestReply:
    """A delivered outbox row (loaded with its message) as the integrating system reads it."""
    return RestReply(cursor=row.id, message_id=row.message_id, ticket_number=format_ticket_number(row.ticket_id),
                     recipient=row.recipient, thread_id=row.payload.get("thread_key"),
                     author=row.message.author_kind.value, text=row.message.text, html=row.message.html,
                     attachments=row.message.attachments, quick_replies=row.payload.get("quick_replies", []),
                     created_at=row.message.created_at,
                     type=reply_type(row.payload.get("quick_replies", [])))


async def replies_page(session: AsyncSession, *, after: int, recipient: str | None, limit: int) -> RestReplyPage:
    """Replies delivered on the REST channel after the cursor `after`, oldest first, and the next cursor."""
    rows: Sequence[OutboxMessage] = await outbox_service.sent_on_channel(session, CHANNEL, after=after,
                                                                          recipient=recipient, limit=limit)
    items = [reply_of(r) for r in rows]
    return RestReplyPage(items=items, next_cursor=items[-1].cursor if items else after)
