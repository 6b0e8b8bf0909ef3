"""Outbound email: composition (threading headers, subject, parts) and SMTP outcomes against aiosmtpd."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import ChannelContext, PermanentSendError
from channels.email.adapter import EmailChannel
from channels.email.compose import compose, reply_subject
from channels.email.inbound import store_attachment
from channels.email.settings import EmailChannelSettings, ImapMailboxSettings, SmtpSettings
from core.attachments.backends import LocalBackend
from core.attachments.store import AttachmentStore
from core.config import CoreSettings
from core.events import EventBus
from core.ingest.service import IngestService
from core.outbox.schemas import OutboundEnvelope, QuickReply
from tests.channels.email.conftest import SmtpSink, make_certificate
from tests.conftest import free_port, keyword_engine


def envelope(**overrides: object) -> OutboundEnvelope:
    values: dict[str, object] = {
        "outbox_id": 7, "message_id": 11, "ticket_id": 3, "channel": "email", "recipient": "customer@example.org",
        "ticket_number": "T-000005", "text": "Line one\n\nLine <two> & more", "subject": "Internet down",
        "in_reply_to": "c2@example.org", "references": ["c1@example.org", "c2@example.org"], "language": "en",
        "author_kind": "agent", "created_at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return OutboundEnvelope.model_validate(values)


@pytest.mark.parametrize(("subject", "expected"), [
    ("Internet down", "Re: Internet down [T-000005]"),
    ("Re: RE: Fwd: Internet down [T-000005]", "Re: Internet down [T-000005]"),
    ("Ответ: Отв: Интернет", "Re: Интернет [T-000005]"),
    ("AW: [T-000005] Problem", "Re: Problem [T-000005]"),
    ("", "Your request [T-000005]"),
    ("Multi\r\nline\tsubject", "Re: Multi line subject [T-000005]"),  # never a header injection
    (None, "Your request [T-000005]"),
])
def test_reply_subject(subject: str | None, expected: str) -> None:
    assert reply_subject(subject, "T-000005") == expected


def test_reply_subject_in_russian_without_subject() -> None:
    assert reply_subject(None, "T-000005", "ru") == "Ваше обращение [T-000005]"


def test_compose_threading_headers_and_parts() -> None:
    msg, message_id = compose(envelope(), from_address="support@support.example", from_name="Support",
                              domain="support.example")
    assert message_id == "sb.20261126100000.11.7@support.example"
    assert msg["Message-ID"] == f"<{message_id}>"
    assert msg["In-Reply-To"] == "<c2@example.org>"
    assert msg["References"] == "<c1@example.org> <c2@example.org>"
    assert msg["Subject"] == "Re: Internet down [T-000005]"
    assert msg["From"] == "Support <support@support.example>"
    assert msg["Auto-Submitted"] is None
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    assert parts["text/plain"].rstrip("\n") == "Line one\n\nLine <two> & more"
    assert "<p>Line &lt;two&gt; &amp; more</p>" in parts["text/html"]
    assert "<two>" not in parts["text/html"]


def test_compose_says_the_reply_language_in_the_mail_as_sent() -> None:
    msg, _ = compose(envelope(language="ru", text="Здравствуйте"), from_address="s@x.example", from_name=None,
                     domain="x.example")
    sent = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert sent["Content-Language"] == "ru"
    assert sent.get_content_type() == "multipart/alternative"
    assert [p["Content-Language"] for p in sent.iter_parts()] == [None, None]  # once, on the whole message
    assert 'lang="ru"' in next(p.get_content() for p in sent.walk() if p.get_content_type() == "text/html")
    unknown, _ = compose(envelope(language=None), from_address="s@x.example", from_name=None, domain="x.example")
    assert unknown["Content-Language"] is None


def test_compose_is_deterministic_per_outbox_row() -> None:
    first = compose(envelope(), from_address="s@x.example", from_name=None, domain="x.example")[1]
    again = compose(envelope(), from_address="s@x.example", from_name=None, domain="x.example")[1]
    other = compose(envelope(outbox_id=8), from_address="s@x.example", from_name=None, domain="x.example")[1]
    assert first == again != other


def test_bot_mail_is_marked_auto_submitted_and_offers_an_operator() -> None:
    msg, _ = compose(envelope(author_kind="bot", language="ru",
                              quick_replies=[QuickReply(title="Оператор", payload="/human_handoff")]),
                     from_address="s@x.example", from_name=None, domain="x.example")
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    text = next(p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain")
    assert "ответьте словом «оператор»" in text


def test_first_message_without_references() -> None:
    msg, _ = compose(envelope(in_reply_to=None, references=[]), from_address="s@x.example", from_name=None,
                     domain="x.example")
    assert msg["In-Reply-To"] is None
    assert msg["References"] is None


def make_channel(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, port: int,
                 **overrides: object) -> EmailChannel:
    values: dict[str, object] = {
        "enabled": True, "smtp": SmtpSettings(host="127.0.0.1", port=port, security="none", timeout_seconds=3),
        "from_address": "support@support.example",
    }
    values.update(overrides)
    ctx = ChannelContext(ingest=IngestService(sessionmaker, keyword_engine, EventBus(), CoreSettings()),
                         bus=EventBus(), sessionmaker=sessionmaker, data_dir=tmp_path,
                         files=LocalBackend(AttachmentStore(tmp_path / "attachments")))
    return EmailChannel(EmailChannelSettings.model_validate(values), ctx)


async def test_send_delivers_and_returns_the_message_id(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port)
    provider_id = await channel.send(envelope())
    assert provider_id == "sb.20261126100000.11.7@support.example"
    [(sender, rcpt, _raw)] = smtp_sink.messages
    assert sender == "support@support.example"
    assert rcpt == ["customer@example.org"]
    assert smtp_sink.parsed()[0]["Message-ID"] == f"<{provider_id}>"
    assert channel.health.details["smtp"]["state"] == "connected"


async def test_a_refused_recipient_is_permanent(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse.add("customer@example.org")
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port)
    with pytest.raises(PermanentSendError, match="550"):
        await channel.send(envelope())


async def test_a_deferred_recipient_is_retried(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    smtp_sink.defer.add("customer@example.org")
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await channel.send(envelope())
    assert not isinstance(info.value, PermanentSendError)
    assert "451" in (channel.health.details["smtp"]["last_error"] or "")


async def test_an_unreachable_smtp_server_is_retried(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    channel = make_channel(sessionmaker, tmp_path, free_port())
    with pytest.raises((aiosmtplib.SMTPException, OSError)):
        await channel.send(envelope())
    assert channel.health.details["smtp"]["state"] == "error"


async def test_a_recipient_that_is_not_an_address_is_permanent(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port)
    with pytest.raises(PermanentSendError):
        await channel.send(envelope(recipient="not an address"))
    assert smtp_sink.messages == []


async def test_without_a_from_address_sending_fails_for_good(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port, from_address=None)
    with pytest.raises(PermanentSendError, match="From"):
        await channel.send(envelope())


async def test_attachments_from_the_store_are_attached(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    files = AttachmentStore(tmp_path / "attachments")
    info = store_attachment(files, "invoice.pdf", "application/pdf", b"%PDF-1.4 test")
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port)
    await channel.send(envelope(attachments=[info.model_dump()]))
    msg = smtp_sink.parsed()[0]
    files = [(p.get_filename(), p.get_payload(decode=True)) for p in msg.walk() if p.get_filename()]
    assert files == [("invoice.pdf", b"%PDF-1.4 test")]
    with pytest.raises(PermanentSendError):
        await channel.send(envelope(attachments=[{"filename": "x", "storage_key": "../../etc/passwd"}]))


async def test_reply_goes_out_from_the_mailbox_the_customer_wrote_to(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    from core.ingest.schemas import InboundMessage, SenderInfo

    boxes = [ImapMailboxSettings(name=n, username=n, password="x", address=f"{n}@support.example",  # type: ignore[arg-type]
                                 port=free_port(), security="none") for n in ("sales", "billing")]
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port, mailboxes=boxes, from_address=None)
    await channel.ctx.ingest.ingest(InboundMessage(
        channel="email", external_message_id="in-billing@example.org",
        sender=SenderInfo(external_id="customer@example.org"), text="invoice?", extra={"mailbox": "billing"}))
    await channel.send(envelope(in_reply_to="in-billing@example.org", references=["in-billing@example.org"]))
    await channel.send(envelope(in_reply_to=None, references=[], outbox_id=9))
    assert [sender for sender, _r, _raw in smtp_sink.messages] == ["billing@support.example", "sales@support.example"]


async def test_a_reply_whose_mailbox_is_unknown_goes_out_through_a_mailbox_with_smtp(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """Mailboxes set up in the console bring their own SMTP; the channel's SMTP is only its default (127.0.0.1:587,
    nobody there). A reply with no In-Reply-To (or from a mailbox since removed) takes a mailbox with SMTP."""
    own = SmtpSettings(host="127.0.0.1", port=smtp_sink.port, security="none", timeout_seconds=3)
    boxes = [ImapMailboxSettings(name="plain", username="p", password="x", port=free_port()),  # type: ignore[arg-type]
             ImapMailboxSettings(name="console", username="c", password="x", port=free_port(),  # type: ignore[arg-type]
                                 address="console@support.example", smtp=own)]
    ctx = make_channel(sessionmaker, tmp_path, smtp_sink.port).ctx
    channel = EmailChannel(EmailChannelSettings(enabled=True, mailboxes=boxes), ctx)  # the channel's SMTP: default
    await channel.send(envelope(in_reply_to=None, references=[]))
    await channel.send(envelope(in_reply_to="gone@example.org", references=["gone@example.org"], outbox_id=9))
    assert [sender for sender, _r, _raw in smtp_sink.messages] == ["console@support.example"] * 2
    # One mailbox: it is the one, without asking the database.
    alone = EmailChannel(EmailChannelSettings(enabled=True, mailboxes=boxes[1:]), ctx)
    assert await alone._mailbox_of(envelope(in_reply_to=None, references=[])) is boxes[1]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_send_over_tls_verifies_the_server(
        security: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    tls = {"ssl_context": context} if security == "ssl" else {"tls_context": context, "require_starttls": True}
    controller = Controller(sink, hostname=sink.host, port=sink.port, **tls)  # type: ignore[arg-type]
    controller.start()
    try:
        smtp = {"host": "127.0.0.1", "port": sink.port, "security": security, "timeout_seconds": 3}
        trusting = make_channel(sessionmaker, tmp_path, sink.port,
                                smtp=SmtpSettings(**smtp, ca_file=str(cert)))  # type: ignore[arg-type]
        assert await trusting.send(envelope())
        assert len(sink.messages) == 1
        # The system's authorities do not know this certificate: refused and retried, nothing sent in the clear.
        untrusting = make_channel(sessionmaker, tmp_path, sink.port, smtp=SmtpSettings(**smtp))  # type: ignore[arg-type]
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.send(envelope())
        assert untrusting.smtp_health.state == "error"
        assert len(sink.messages) == 1
    finally:
        controller.stop()


DOUBLE_ENCODED_CRLF = "=?utf-8?q?a=0D=0ABcc:_victim@evil.example?="


@pytest.mark.parametrize("field", ["subject", "in_reply_to", "references"])
def test_a_value_that_decodes_to_a_newline_adds_no_header_to_the_reply(field: str) -> None:
    """EmailMessage decodes RFC 2047 words in the values it is given, and Python 3.11 wrote the CR/LF one held
    as a line of its own: a customer's Subject or Message-ID that decoded (once, by us) to such a word put a Bcc
    into our reply."""
    value: object = {"subject": f"Hi {DOUBLE_ENCODED_CRLF}", "in_reply_to": f"{DOUBLE_ENCODED_CRLF}@x.org",
                     "references": [f"{DOUBLE_ENCODED_CRLF}@x.org", "c1@example.org"]}[field]
    message, _id = compose(envelope(**{field: value}), from_address="support@support.example",
                           from_name="Support", domain="support.example")
    head = message.as_bytes().split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in head and b"\r\nBcc:" not in head, head
    assert all("\n" not in str(v) and "\r" not in str(v) for v in message.values())
    if field == "references":
        assert message["References"] == "<c1@example.org> <c2@example.org>"  # the safe ones still thread


async def test_an_agents_reply_is_from_their_display_name_and_the_mailbox_name(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, smtp_sink: SmtpSink) -> None:

    def froms() -> list[tuple[str, str]]:
        parsed = [message_from_bytes(raw, policy=policy.default) for _f, _r, raw in smtp_sink.messages]
        return [(m["From"].addresses[0].display_name, m["From"].addresses[0].addr_spec) for m in parsed]

    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port, from_name="Support")
    await channel.send(envelope(author_name="Анна"))
    await channel.send(envelope(message_id=12, author_kind="bot", author_name=None))
    await channel.send(envelope(message_id=13, author_name=None))  # a reply stored before display names
    assert froms() == [("Анна (Support)", "support@support.example"), ("Support", "support@support.example"),
                     ("Support", "support@support.example")]
    assert [sender for sender, _rcpt, _raw in smtp_sink.messages] == ["support@support.example"] * 3
    # Without a mailbox name, the agent's name alone.
    channel = make_channel(sessionmaker, tmp_path, smtp_sink.port, from_name="")
    await channel.send(envelope(message_id=14, author_name="Anna"))
    assert froms()[-1] == ("Anna", "support@support.example")
