"""A parsed email -> the InboundMessage core ingests; attachments written to the attachment store."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from channels.email.parser import ParsedEmail, parse_email
from channels.email.settings import EmailChannelSettings
from core.attachments.policy import AttachmentPolicy
from core.attachments.store import SavesBlocking
from core.ingest.schemas import AttachmentInfo, InboundMessage, SenderInfo

CHANNEL = "email"


def policy_of(settings: EmailChannelSettings) -> AttachmentPolicy:
    """The attachment policy with this channel's size limit and its allow-list of types."""
    return AttachmentPolicy(max_bytes=settings.max_attachment_bytes,
                            allowed_types=tuple(t.lower() for t in settings.allowed_attachment_types),
                            blocked_extensions=frozenset(e.lower().lstrip(".") for e in settings.blocked_extensions))


def store_attachment(files: SavesBlocking, filename: str, content_type: str, data: bytes) -> AttachmentInfo:
    """Content-addressed, written atomically: a redelivered mail rewrites nothing and never half a file."""
    return files.save(filename, content_type, data, namespace=CHANNEL)


def own_addresses(settings: EmailChannelSettings) -> frozenset[str]:
    """The addresses this channel sends from: mail from them is our own coming back, never a customer."""
    addresses = {settings.from_address, *(m.address for m in settings.mailboxes)}
    return frozenset(a.lower() for a in addresses if a)


def build_inbound(parsed: ParsedEmail, *, files: SavesBlocking, mailbox: str, raw_ref: str,
                  received_at: datetime, extra: dict[str, Any] | None = None,
                  own: frozenset[str] = frozenset(), trust_sender: bool = False) -> InboundMessage:
    """Store the accepted attachments and build the frozen InboundMessage.

    `trust_sender`: the channel vouches for the From address (EmailChannelSettings.trust_sender_address), so it
    links this customer to one known by the same verified address on another channel."""
    attachments: list[AttachmentInfo] = []
    rejected: list[dict[str, Any]] = []
    for item in parsed.attachments:
        if item.rejected is not None:
            rejected.append({"filename": item.filename, "content_type": item.content_type, "size": len(item.data),
                             "reason": item.rejected})
            continue
        attachments.append(store_attachment(files, item.filename, item.content_type, item.data))
    info: dict[str, Any] = {"mailbox": mailbox, "message_id": parsed.message_id, "to": list(parsed.to),
                            "cc": list(parsed.cc), **(extra or {})}
    if parsed.synthetic_id:
        info["synthetic_message_id"] = True
    auto_reply_reason = parsed.auto_reply_reason
    if auto_reply_reason is None and parsed.sender_email in own:
        # A copy of our own reply (Bcc to the support box, a forwarding loop): store it, never answer it.
        auto_reply_reason = "sent from this channel's own address"
    if auto_reply_reason:
        info["auto_reply_reason"] = auto_reply_reason
    if parsed.bounce:
        info["bounce"] = parsed.bounce
    if parsed.quoted:
        # `text` is what the customer wrote now; the history their client quoted below it is kept with the
        # message for the console to show on demand (and left out of what the NLU reads).
        info["quoted"] = parsed.quoted
    if rejected:
        info["rejected_attachments"] = rejected
    if parsed.defects:
        info["mime_defects"] = list(parsed.defects)
    if parsed.date is not None:
        info["date_header"] = parsed.date.isoformat()
    external_id = parsed.message_id if len(parsed.message_id) <= 500 else \
        "sha256-" + hashlib.sha256(parsed.message_id.encode()).hexdigest()
    return InboundMessage(
        channel=CHANNEL, external_message_id=external_id,
        sender=SenderInfo(external_id=parsed.sender_email[:320], name=(parsed.sender_name or None) and
                          parsed.sender_name[:200], email=parsed.sender_email[:320],
                          verified=trust_sender and auto_reply_reason is None),
        text=parsed.text, html=parsed.html, subject=parsed.subject[:300] or None,
        attachments=tuple(attachments), thread_key=None, references=parsed.references,
        ticket_number_hint=parsed.ticket_number_hint, language_hint=parsed.language_hint,
        auto_reply=auto_reply_reason is not None, raw_ref=raw_ref, extra=info, received_at=received_at,
    )


def parse_to_inbound(raw: bytes, settings: EmailChannelSettings, *, files: SavesBlocking, mailbox: str,
                     raw_ref: str, received_at: datetime) -> InboundMessage:
    """Blocking (parsing, file writes): run it in a worker thread."""
    parsed = parse_email(raw, policy_of(settings))
    return build_inbound(parsed, files=files, mailbox=mailbox, raw_ref=raw_ref, received_at=received_at,
                         own=own_addresses(settings), trust_sender=settings.trust_sender_address)
