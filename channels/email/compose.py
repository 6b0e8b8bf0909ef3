"""An outbox envelope -> the MIME message to send: threading headers, ticket tag, text and HTML parts."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from core.db.base import utcnow
from core.outbox.schemas import OutboundEnvelope

_PREFIXES = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|ответ|отв|пересл)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_TAG = re.compile(r"\s*\[\s*#?\s*T-\d{1,12}\s*\]", re.IGNORECASE)

_TEXTS = {
    "subject": {"en": "Your request", "ru": "Ваше обращение"},
    "operator_hint": {"en": "To talk to an operator, reply with the word “operator”.",
                      "ru": "Чтобы связаться с оператором, ответьте словом «оператор»."},
}


def _text(key: str, language: str | None) -> str:
    options = _TEXTS[key]
    return options.get((language or "en")[:2], options["en"])


def reply_subject(subject: str | None, ticket_number: str, language: str | None = None) -> str:
    """`Re: <subject> [T-000123]`, without piling up prefixes or tags on every round."""
    base = _TAG.sub("", _PREFIXES.sub("", re.sub(r"\s+", " ", subject or ""))).strip()[:250]
    tag = f"[{ticket_number}]" if ticket_number else ""
    if not base:
        return f"{_text('subject', language)} {tag}".strip()
    return f"Re: {base} {tag}".strip()


def message_id_for(envelope: OutboundEnvelope, domain: str) -> str:
    """Deterministic per outbox row: a resend after a crash carries the same id, so clients dedupe it."""
    stamp = (envelope.created_at or utcnow()).strftime("%Y%m%d%H%M%S")
    return f"sb.{stamp}.{envelope.message_id}.{envelope.outbox_id}@{domain}"


def body_text(envelope: OutboundEnvelope) -> str:
    text = envelope.text.rstrip()
    if any(q.payload == "/human_handoff" for q in envelope.quick_replies):
        text = f"{text}\n\n{_text('operator_hint', envelope.language)}"
    return text


def body_html(text: str, language: str | None) -> str:
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))
    lang = html.escape((language or "en")[:8], quote=True)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{paragraphs}</body></html>')


def compose(envelope: OutboundEnvelope, *, from_address: str, from_name: str | None,
            domain: str) -> tuple[EmailMessage, str]:
    """The message and its Message-ID (bare, as stored for threading)."""
    message_id = message_id_for(envelope, domain)
    msg = EmailMessage()
    msg["From"] = formataddr((from_name, from_address)) if from_name else from_address
    msg["To"] = envelope.recipient
    msg["Subject"] = reply_subject(envelope.subject, envelope.ticket_number, envelope.language)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{message_id}>"
    references = [r for r in envelope.references if r][-20:]
    if envelope.in_reply_to and envelope.in_reply_to not in references:
        references.append(envelope.in_reply_to)
    if envelope.in_reply_to:
        msg["In-Reply-To"] = f"<{envelope.in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    if envelope.ticket_number:
        msg["X-Switchboard-Ticket"] = envelope.ticket_number
    if envelope.language:
        msg["Content-Language"] = envelope.language
    if envelope.author_kind == "bot":
        # RFC 3834: other robots must not answer our robot, or two autoresponders loop forever.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    text = body_text(envelope)
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(body_html(text, envelope.language), subtype="html", charset="utf-8")
    return msg, message_id
