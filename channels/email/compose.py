"""An outbox envelope -> the MIME message to send: threading headers, ticket tag, text and HTML parts."""

from __future__ import annotations

import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from core.db.base import utcnow
from core.i18n import language_of_tag, translator
from core.outbox.schemas import OutboundEnvelope

_PREFIXES = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|ответ|отв|пересл)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_TAG = re.compile(r"\s*\[\s*#?\s*T-\d{1,12}\s*\]", re.IGNORECASE)
# A Message-ID we can repeat in In-Reply-To/References: printable ASCII without brackets or an RFC 2047 opener.
_SAFE_MESSAGE_ID = re.compile(r"^(?!.*=\?)[!-;=?-~]{1,500}$")

def _inert(text: str) -> str:
    """Header text that stays text: EmailMessage decodes RFC 2047 words in what it is given, and Python 3.11
    writes a newline they decode to as a line of its own, so a customer whose Subject decodes to
    `=?utf-8?q?a=0D=0ABcc:_x@evil?=` would add a Bcc to our reply. The opener loses its meaning."""
    return re.sub(r"\s+", " ", text).replace("=?", "= ?")


def safe_message_ids(ids: list[str]) -> list[str]:
    """The ids fit to repeat in threading headers; others are dropped (the ticket tag still threads)."""
    return [i for i in ids if _SAFE_MESSAGE_ID.match(i)]


def reply_subject(subject: str | None, ticket_number: str, language: str | None = None) -> str:
    """`Re: <subject> [T-000123]`, without piling up prefixes or tags on every round."""
    base = _TAG.sub("", _PREFIXES.sub("", _inert(subject or ""))).strip()[:250]
    tag = f"[{ticket_number}]" if ticket_number else ""
    if not base:
        return f"{translator(language_of_tag(language))('email.subject')} {tag}".strip()
    return f"Re: {base} {tag}".strip()


def message_id_for(envelope: OutboundEnvelope, domain: str) -> str:
    """Deterministic per outbox row: a resend after a crash carries the same id, so clients dedupe it."""
    stamp = (envelope.created_at or utcnow()).strftime("%Y%m%d%H%M%S")
    return f"sb.{stamp}.{envelope.message_id}.{envelope.outbox_id}@{domain}"


def body_text(envelope: OutboundEnvelope) -> str:
    text = envelope.text.rstrip()
    if any(q.payload == "/human_handoff" for q in envelope.quick_replies):
        text = f"{text}\n\n{translator(language_of_tag(envelope.language))('email.operator_hint')}"
    return text


def body_html(text: str, language: str | None) -> str:
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))
    lang = html.escape((language or "en")[:8], quote=True)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{paragraphs}</body></html>')


def set_body(msg: EmailMessage, text: str, html_text: str, language: str | None) -> None:
    """The plain-text and HTML alternatives of `msg`, then its Content-Language (when known). The order matters:
    `set_content` deletes every Content-* header the message had and `add_alternative` moves them into the first
    part, so a Content-Language set before them never reaches the reader."""
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html_text, subtype="html", charset="utf-8")
    if language:
        msg["Content-Language"] = language


def sender_name(envelope: OutboundEnvelope, from_name: str | None) -> str | None:
    """The From display name: an agent's reply is from "Anna (Support)" (the agent, then the mailbox's name)."""
    if envelope.author_kind != "agent" or not envelope.author_name:
        return from_name
    return f"{envelope.author_name} ({from_name})" if from_name else envelope.author_name


def compose(envelope: OutboundEnvelope, *, from_address: str, from_name: str | None,
            domain: str) -> tuple[EmailMessage, str]:
    """The message and its Message-ID (bare, as stored for threading)."""
    message_id = message_id_for(envelope, domain)
    msg = EmailMessage()
    # Address quotes or encodes the whole name: "Анна (Support)" stays one name, not a name and a comment.
    msg["From"] = Address(display_name=from_name, addr_spec=from_address) if from_name else from_address
    msg["To"] = envelope.recipient
    msg["Subject"] = reply_subject(envelope.subject, envelope.ticket_number, envelope.language)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{message_id}>"
    references = safe_message_ids([r for r in envelope.references if r])[-20:]
    in_reply_to = next(iter(safe_message_ids([envelope.in_reply_to] if envelope.in_reply_to else [])), None)
    if in_reply_to and in_reply_to not in references:
        references.append(in_reply_to)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    if envelope.ticket_number:
        msg["X-Switchboard-Ticket"] = envelope.ticket_number
    if envelope.author_kind == "bot":
        # RFC 3834: other robots must not answer our robot, or two autoresponders loop forever.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    text = body_text(envelope)
    set_body(msg, text, body_html(text, envelope.language), envelope.language)
    return msg, message_id
