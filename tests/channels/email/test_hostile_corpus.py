"""The hostile corpus through the real IMAP path (Dovecot -> the channel -> ingest -> SMTP replies), and through
the parser alone: every mail stored with sane text or quarantined with a reason, the poller never stops, the
mail after the corpus arrives, the checkpoint passes them all, and no reply carries an injected header."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.email.parser import (
    MAX_HEADER_CHARS,
    MAX_HTML_CHARS,
    MAX_PARTS,
    MAX_QUOTED_CHARS,
    MAX_REFERENCES,
    MAX_TEXT_CHARS,
    ParsedEmail,
    UnparseableEmail,
    parse_email,
)
from core.attachments.policy import MAX_NAME_BYTES
from core.quarantine.models import QuarantinedPayload
from core.tickets.models import Direction
from core.tickets.models import Message as DbMessage
from tests.channels.email.conftest import Dovecot, SmtpSink, email_settings, wait_for
from tests.channels.email.hostile_corpus import BUILDERS, RUSSIAN, SENDER, corpus, normal_mail
from tests.channels.email.test_channel import _checkpoint_is, channel_of, running_app

# What each mail of the corpus must become: stored, or quarantined with a reason containing these words.
QUARANTINED = {
    "parts-10000": "more than 500 MIME parts",
    "nested-multipart-1000": "nested MIME containers",
    "nested-multipart-5000": "nested MIME containers",
    "nested-rfc822-1000": "nested MIME containers",
    "digest-of-nested-digests": "nested MIME containers",
    "content-type-params-800k": "Content-Type header over",
    "filename-rfc2231-20000-pieces": "Content-Disposition header over",
    "no-sender": "no sender address",
    "from-double-encoded-crlf": "no sender address",
    "only-garbage": "no headers",
}
# Russian text whose declared charset lies (or is unknown): read right all the same.
LYING_RUSSIAN = {
    "cp1251-declared-utf8",
    "koi8r-declared-utf8",
    "utf8-declared-cp1251",
    "koi8r-declared-cp1251",
    "unknown-charset",
}
INJECTED = re.compile(rb"^(bcc|x-injected)\s*:", re.IGNORECASE | re.MULTILINE)


def assert_sane(parsed: ParsedEmail) -> None:
    texts = [
        parsed.text,
        parsed.subject,
        parsed.sender_email,
        parsed.message_id,
        parsed.html or "",
        parsed.quoted,
        parsed.sender_name or "",
        *parsed.references,
        *parsed.to,
        *parsed.cc,
    ]
    for text in texts:
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate
    assert len(parsed.text) <= MAX_TEXT_CHARS and len(parsed.quoted) <= MAX_QUOTED_CHARS
    assert len(parsed.html or "") <= MAX_HTML_CHARS
    assert len(parsed.subject) <= MAX_HEADER_CHARS and len(parsed.references) <= MAX_REFERENCES
    assert len(parsed.attachments) <= MAX_PARTS
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    for item in parsed.attachments:
        name = item.filename
        assert name and "/" not in name and "\\" not in name and not name.startswith(".")
        assert len(name.encode()) <= MAX_NAME_BYTES  # bytes: the one attachment policy's cap
        assert not re.match(r"^(con|prn|aux|nul|com\d|lpt\d)(\.|$)", name, re.IGNORECASE)
        assert all(ord(c) >= 32 and not 0x202A <= ord(c) <= 0x202E and c != "\x7f" for c in name)


def test_the_corpus_is_big_enough() -> None:
    assert len(BUILDERS) >= 50


@pytest.mark.parametrize("name", list(BUILDERS))
def test_each_hostile_mail_parses_or_is_refused_with_its_reason(name: str) -> None:
    """Before the bounds: RecursionError (deep nesting), UnicodeError (charset=undefined), AttributeError (an
    8-bit Content-Disposition), NUL and lone surrogates in the text, minutes of work on unclosed HTML tags."""
    raw = BUILDERS[name](name)
    if name in QUARANTINED:
        with pytest.raises(UnparseableEmail, match=QUARANTINED[name]):
            parse_email(raw)
        return
    parsed = parse_email(raw)
    assert_sane(parsed)
    if name in LYING_RUSSIAN:
        assert parsed.text == RUSSIAN


@pytest.mark.timeout(300)
async def test_the_hostile_corpus_through_imap(
    db_url: str,
    db_engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_sink: SmtpSink,
) -> None:
    user = dovecot.add_user()
    mails = corpus()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user), fetch_batch=20)
    async with running_app(db_url, tmp_path, settings) as app:
        await dovecot.append(user, *(raw for _name, raw in mails), normal_mail())
        total = len(mails) + 1
        await wait_for(
            lambda: _checkpoint_is(sessionmaker, user, total),
            timeout=240,
            what="the checkpoint past every hostile mail and the normal one",
        )
        worker = channel_of(app).workers[user]
        await wait_for(lambda: channel_of(app).health.state == "connected", what="the mailbox connected")
        assert worker.health.last_error is None  # the poller never failed, not even once
        async with sessionmaker() as session:
            stored = (
                await session.scalars(
                    select(DbMessage).where(DbMessage.direction == Direction.inbound, DbMessage.channel == "email")
                )
            ).all()
            quarantined = (await session.scalars(select(QuarantinedPayload))).all()
        # The bot answers what it can; replies are sent after the commit, so wait for them before checking.
        answerable = [m for m in stored if not (m.extra or {}).get("auto_reply_reason")]
        await wait_for(lambda: len(smtp_sink.messages) >= len(answerable), timeout=60, what="the bot's replies")

    ids = {m.external_message_id.split("@", 1)[0]: m for m in stored}
    assert "normal-after-corpus" in ids
    reasons = Counter(
        next((why for why in set(QUARANTINED.values()) if why in q.reason), q.reason) for q in quarantined
    )
    expected = Counter(QUARANTINED.values())
    assert reasons == expected, reasons
    assert len(stored) + len(quarantined) == total
    assert {name for name, _raw in mails} - set(QUARANTINED) - set(ids) <= {
        "message-id-huge",
        "message-id-double-encoded-crlf",
    }  # hashed id
    for message in stored:
        assert "\x00" not in message.text
        message.text.encode("utf-8")
    assert "My internet is down" in ids["normal-after-corpus"].text
    assert "Здравствуйте" in ids["koi8r-declared-utf8"].text
    assert "Здравствуйте" in ids["cp1251-declared-utf8"].text
    assert "Здравствуйте" in ids["utf8-declared-cp1251"].text
    assert "Здравствуйте" in ids["koi8r-declared-cp1251"].text
    for _sender, recipients, raw in smtp_sink.messages:
        assert recipients == [SENDER] or "@" in recipients[0]
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert not INJECTED.search(head), head[:500]
    print(
        f"\nhostile corpus: {len(mails)} mails + 1 normal; stored {len(stored)}, quarantined {len(quarantined)}: "
        f"{dict(reasons)}; replies sent {len(smtp_sink.messages)}"
    )


async def test_a_quarantined_mail_with_nul_bytes_is_kept_and_the_mailbox_goes_on(
    db_url: str,
    db_engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_sink: SmtpSink,
) -> None:
    """PostgreSQL refuses NUL in text: quarantining such a mail failed, so the reader would retry it for ever and
    the mail after it never arrive. Dovecot stores NUL as 0x80, so the NUL payload is handed to the reader's
    quarantine directly, as a server delivering NUL (IMAP BINARY) would make it."""
    user = dovecot.add_user()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user))
    async with running_app(db_url, tmp_path, settings) as app:
        await dovecot.append(user, BUILDERS["only-garbage"]("only-garbage"), normal_mail())
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 2), timeout=60, what="the checkpoint past both")
        await channel_of(app).workers[user]._quarantine("no sender\x00", b"X-Nul: a\x00b\xff\r\n\r\nno sender\x00")
    async with sessionmaker() as session:
        rows = (await session.scalars(select(QuarantinedPayload).order_by(QuarantinedPayload.id))).all()
        stored = (await session.scalars(select(DbMessage).where(DbMessage.direction == Direction.inbound))).all()
    assert ["no headers" in rows[0].reason, rows[1].reason] == [True, "no sender"]
    assert all("\x00" not in r.payload for r in rows)
    assert "a\\x00b\\xff" in rows[1].payload  # escaped, still there for a human to read
    assert [m.external_message_id for m in stored] == ["normal-after-corpus@hostile.example"]
