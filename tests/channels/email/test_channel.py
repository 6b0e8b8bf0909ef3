"""The email channel end to end: a real Dovecot in, a real SMTP server out, the real app in between."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.email import repository as email_repository
from channels.email.adapter import EmailChannel
from channels.email.repository import Checkpoint
from channels.email.settings import EmailChannelSettings
from core.attachments.backends import LocalBackend
from core.attachments.store import AttachmentStore
from core.cursors import repository as cursors
from core.outbox.models import OutboxMessage
from core.quarantine.models import QuarantinedPayload
from core.tickets.models import Direction, Ticket
from core.tickets.models import Message as DbMessage
from tests.channels.email.conftest import Dovecot, SmtpSink, email_settings, fixture_bytes, wait_for
from tests.conftest import REST_KEY, free_port, keyword_engine, make_settings, responses

CUSTOMER = "customer@example.org"


def mail(message_id: str, text: str, *, sender: str = CUSTOMER, subject: str = "Hello",
         in_reply_to: str | None = None, headers: str = "") -> bytes:
    threading = f"In-Reply-To: <{in_reply_to}>\nReferences: <{in_reply_to}>\n" if in_reply_to else ""
    raw = (f"From: Customer <{sender}>\nTo: support@support.example\nSubject: {subject}\n"
           f"Date: Thu, 26 Nov 2026 10:00:00 +0000\nMessage-ID: <{message_id}>\n{threading}{headers}"
           f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{text}\n")
    return raw.replace("\n", "\r\n").encode()


@contextlib.asynccontextmanager
async def running_app(db_url: str, tmp_path: Path, email: EmailChannelSettings) -> AsyncIterator[Any]:
    settings = make_settings(db_url, data_dir=tmp_path / "data", channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), email=email))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    async with app.router.lifespan_context(app):
        yield app


def channel_of(app: Any) -> EmailChannel:
    adapter = app.state.switchboard.channels.get("email")
    assert isinstance(adapter, EmailChannel)
    return adapter


async def inbound_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(DbMessage).where(
            DbMessage.direction == Direction.inbound, DbMessage.channel == "email")) or 0)


async def count(sessionmaker: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def checkpoint(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> Checkpoint | None:
    async with sessionmaker() as session:
        return await email_repository.get_checkpoint(session, name)


def header_ids(msg: Message, name: str) -> list[str]:
    return [t.strip("<>") for t in str(msg.get(name, "")).split()]


def bodies(msg: Message) -> dict[str, str]:
    return {p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
            for p in msg.walk() if not p.is_multipart()}


async def test_round_trip_threads_bot_and_agent_replies_and_the_customer_answer(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink, agent: tuple[Any, dict[str, str]]) -> None:
    user = dovecot.add_user()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user))
    async with running_app(db_url, tmp_path, settings) as app:
        await dovecot.append(user, mail("first-1@example.org", "Hello there", subject="Greetings"))
        await wait_for(lambda: len(smtp_sink.messages) == 1, what="the bot's answer by SMTP")
        async with sessionmaker() as session:
            ticket = (await session.scalars(select(Ticket))).one()
        bot = smtp_sink.parsed()[0]
        assert smtp_sink.messages[0][1] == [CUSTOMER]
        assert bot["In-Reply-To"] == "<first-1@example.org>"
        assert header_ids(bot, "References") == ["first-1@example.org"]
        assert bot["Subject"] == f"Re: Greetings [{ticket.number}]"
        assert bot["Auto-Submitted"] == "auto-replied"  # our robot must not start a loop with theirs
        assert bodies(bot)["text/plain"].startswith("Hello! How can I help?")
        assert "text/html" in bodies(bot)
        async def recorded() -> str | None:
            # The mail is with the sink before the dispatcher writes down its Message-ID: wait for the record.
            async with sessionmaker() as session:
                return (await session.scalars(select(OutboxMessage))).one().provider_message_id
        assert f"<{await wait_for(recorded, what='the delivery recorded')}>" == bot["Message-ID"]

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            reply = await client.post(f"/tickets/{ticket.number}/reply", headers=agent[1],
                                      json={"text": "Please restart the <router> & wait 5 minutes."})
            assert reply.status_code == 201, reply.text
            await wait_for(lambda: len(smtp_sink.messages) == 2, what="the agent's reply by SMTP")
            agent_mail = smtp_sink.parsed()[1]
            assert agent_mail["In-Reply-To"] == "<first-1@example.org>"
            assert agent_mail["Auto-Submitted"] is None
            assert agent_mail["Subject"] == f"Re: Greetings [{ticket.number}]"
            assert "&lt;router&gt; &amp; wait" in bodies(agent_mail)["text/html"]
            assert "<router> & wait" in bodies(agent_mail)["text/plain"]

            # The customer answers the agent's mail from a client that drops the ticket tag from the subject.
            agent_id = str(agent_mail["Message-ID"]).strip("<>")
            await dovecot.append(user, mail("second-2@example.org", "It works now, thanks", subject="Re: Greetings",
                                            in_reply_to=agent_id))
            await wait_for(lambda: inbound_count(sessionmaker), what="first inbound")
            await wait_for(lambda: _eq(inbound_count(sessionmaker), 2), what="the customer's answer")
            assert await count(sessionmaker, Ticket) == 1

            health = (await client.get("/health")).json()
            email_health = health["channels"]["email"]
            assert email_health["state"] == "connected"
            assert email_health["mailboxes"][user]["state"] == "connected"
            assert email_health["mailboxes"][user]["last_message_at"] is not None
            assert email_health["smtp"]["state"] == "connected"


async def _eq(awaitable: Any, expected: Any) -> bool:
    return bool(await awaitable == expected)


async def test_restart_backfills_everything_since_the_checkpoint_exactly_once(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    user = dovecot.add_user()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user))
    await dovecot.append(user, *(mail(f"before-{i}@example.org", f"message {i}", sender=f"c{i}@example.org")
                                 for i in range(3)))
    async with running_app(db_url, tmp_path, settings):
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 3), what="3 ingested")
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 3), what="checkpoint 3")
    # The outage: mail keeps arriving, 25 of them (more than one fetch batch of the test settings).
    await dovecot.append(user, *(mail(f"during-{i}@example.org", f"late {i}", sender=f"d{i}@example.org")
                                 for i in range(25)))
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user), fetch_batch=10)
    async with running_app(db_url, tmp_path, settings) as app:
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 28), what="backfill of 25")
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 28), what="checkpoint 28")
        assert channel_of(app).workers[user].ingested == 25  # nothing read twice

    # A crash after the ingest commit but before the checkpoint write: everything is redelivered, nothing doubles.
    async with sessionmaker() as session, session.begin():
        saved = await email_repository.get_checkpoint(session, user)
        assert saved is not None
        await cursors.put(session, "email", user, json.dumps({"uidvalidity": saved.uidvalidity, "last_uid": 20}),
                          saved.updated_at)
    async with running_app(db_url, tmp_path, settings):
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 28), what="checkpoint back at 28")
        assert await inbound_count(sessionmaker) == 28


async def _checkpoint_is(sessionmaker: async_sessionmaker[AsyncSession], name: str, uid: int,
                         uidvalidity: int | None = None) -> bool:
    row = await checkpoint(sessionmaker, name)
    return row is not None and row.last_uid == uid and uidvalidity in (None, row.uidvalidity)


async def test_uidvalidity_change_rescans_and_dedupes(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    user = dovecot.add_user()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user))
    await dovecot.append(user, mail("uv-1@example.org", "one"), mail("uv-2@example.org", "two"))
    async with running_app(db_url, tmp_path, settings):
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 2), what="2 ingested")
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 2), what="checkpoint")
    before = await checkpoint(sessionmaker, user)
    assert before is not None
    dovecot.set_uidvalidity(user, before.uidvalidity + 1000)
    await dovecot.append(user, mail("uv-3@example.org", "three"))
    async with running_app(db_url, tmp_path, settings):
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 3), what="the new mail after the change")
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 3, before.uidvalidity + 1000),
                       what="a checkpoint under the new UIDVALIDITY")
    async with sessionmaker() as session:
        ids = sorted((await session.scalars(select(DbMessage.external_message_id).where(
            DbMessage.direction == Direction.inbound))).all())
    assert ids == ["uv-1@example.org", "uv-2@example.org", "uv-3@example.org"]


async def test_auto_replies_and_bounces_are_stored_but_never_answered(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    user = dovecot.add_user()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user))
    async with running_app(db_url, tmp_path, settings):
        await dovecot.append(user, fixture_bytes("vacation_autoreply.eml"), fixture_bytes("dsn_bounce.eml"),
                             fixture_bytes("precedence_bulk.eml"), mail("human-1@example.org", "Hello"))
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 4), what="all four stored")
        await wait_for(lambda: len(smtp_sink.messages) >= 1, what="the human's answer")
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 4), what="checkpoint")
    assert [rcpt for _f, rcpt, _raw in smtp_sink.messages] == [[CUSTOMER]]
    assert await count(sessionmaker, OutboxMessage) == 1
    async with sessionmaker() as session:
        extras = {m.external_message_id: m.extra for m in (await session.scalars(select(DbMessage).where(
            DbMessage.direction == Direction.inbound))).all()}
    assert extras["vacation-0001@corp.example"]["auto_reply_reason"] == "Auto-Submitted: auto-replied"
    assert extras["dsn-0001@mx.support.example"]["bounce"]["recipient"] == "gone@customer.example"


async def test_unparseable_mail_is_quarantined_and_the_next_one_still_arrives(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    user = dovecot.add_user()
    settings = email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user), max_message_bytes=20_000)
    big = mail("big-1@example.org", "x" * 30_000)
    async with running_app(db_url, tmp_path, settings) as app:
        await dovecot.append(user, fixture_bytes("not_an_email.eml"), fixture_bytes("no_sender.eml"), big,
                             fixture_bytes("broken_mime.eml"), mail("after-1@example.org", "Hello"))
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 2), what="the good and the broken-but-readable")
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 5), what="checkpoint past the bad ones")
        # The first sync can pass the checkpoint before the reader reports itself connected.
        await wait_for(lambda: channel_of(app).health.state == "connected", what="the mailbox connected")
    async with sessionmaker() as session:
        rows = (await session.scalars(select(QuarantinedPayload).order_by(QuarantinedPayload.id))).all()
    assert [r.channel for r in rows] == ["email"] * 3
    by_reason = {next(k for k in ("no headers", "no sender address", "too large") if k in r.reason): r for r in rows}
    assert set(by_reason) == {"no headers", "no sender address", "too large"}
    assert by_reason["no sender address"].content_type == "message/rfc822"
    assert "who am I" in by_reason["no sender address"].payload
    assert "big-1@example.org" in by_reason["too large"].payload  # its headers, for a human to follow up


async def test_unreachable_imap_shows_in_health_and_the_app_keeps_working(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    good = dovecot.add_user()
    dead = dovecot.mailbox_settings("dead", port=free_port(), username="dead")
    settings = email_settings(dovecot, smtp_sink, dead, dovecot.mailbox_settings(good))
    async with running_app(db_url, tmp_path, settings) as app:
        channel = channel_of(app)
        await wait_for(lambda: channel.workers["dead"].health.state == "error", what="the dead mailbox's error")
        await dovecot.append(good, mail("alive-1@example.org", "Hello"))
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), what="the good mailbox still ingests")
        await wait_for(lambda: len(smtp_sink.messages) == 1, what="and its answer goes out")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            health = (await client.get("/health")).json()
        email_health = health["channels"]["email"]
        assert email_health["state"] == "degraded"
        assert email_health["mailboxes"]["dead"]["state"] == "error"
        assert "Connection" in email_health["mailboxes"]["dead"]["last_error"] or \
            "refused" in email_health["mailboxes"]["dead"]["last_error"].lower()
        assert email_health["mailboxes"]["dead"]["reconnect_attempt"] >= 1
        # It keeps trying, with backoff, for as long as the app runs.
        await wait_for(lambda: channel.workers["dead"].health.details["reconnect_attempt"] >= 3, what="retries")
        assert email_health["mailboxes"][good]["state"] == "connected"
        assert email_health["last_error"].startswith("dead: ")


async def test_wrong_password_is_an_error_not_a_crash(
        db_url: str, db_engine: AsyncEngine, tmp_path: Path, dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    settings = email_settings(dovecot, None, dovecot.mailbox_settings(user, password=SecretStr("wrong")))
    async with running_app(db_url, tmp_path, settings) as app:
        channel = channel_of(app)
        await wait_for(lambda: channel.health.state == "error", what="login error")
        assert "login refused" in (channel.workers[user].health.last_error or "")


@pytest.mark.parametrize("use_idle", [True, False])
async def test_new_mail_arrives_by_idle_push_or_polling(
        use_idle: bool, db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path, dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    # With IDLE the safety poll is far away, so only a push can deliver the mail in time.
    box = dovecot.mailbox_settings(user, use_idle=use_idle, poll_seconds=60.0 if use_idle else 0.3)
    async with running_app(db_url, tmp_path, email_settings(dovecot, None, box)) as app:
        worker = channel_of(app).workers[user]
        await wait_for(lambda: worker.health.state == "connected", what="connected")
        assert worker.health.details["mode"] == ("idle" if use_idle else "poll")
        await dovecot.append(user, mail("live-1@example.org", "Hello"))
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), timeout=8, what="live delivery")
        if use_idle:
            assert worker.idle_wakeups >= 1


async def test_a_dropped_connection_reconnects_and_catches_up(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    box = dovecot.mailbox_settings(user, poll_seconds=60.0)
    async with running_app(db_url, tmp_path, email_settings(dovecot, None, box)) as app:
        worker = channel_of(app).workers[user]
        await wait_for(lambda: worker.health.state == "connected", what="connected")
        dovecot.doveadm("kick", user)
        await dovecot.append(user, mail("after-kick@example.org", "Hello"))
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), timeout=10, what="delivery after reconnect")


async def test_a_connection_lost_while_idle_starts_reconnects(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    """The connection drops after the mailbox is read and before the server acknowledges IDLE (aioimaplib's IDLE
    start waits for that acknowledgement with no timeout): the worker reconnects instead of waiting forever."""
    user = dovecot.add_user()
    drops: list[int] = []

    async def proxy(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(dovecot.host, dovecot.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, first_idle_drops: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if first_idle_drops and not drops and b" IDLE\r\n" in data:
                        drops.append(1)  # the first IDLE never reaches the server: the connection is cut
                        client_writer.close()
                        server_writer.close()
                        return
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(client_reader, server_writer, True), pipe(server_reader, client_writer, False))

    cutter = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = cutter.sockets[0].getsockname()[1]
    box = dovecot.mailbox_settings(user, port=port, poll_seconds=60.0)  # a poll would come long after the wait
    try:
        async with running_app(db_url, tmp_path, email_settings(dovecot, None, box)):
            await wait_for(lambda: drops, what="the first IDLE cut")
            await dovecot.append(user, mail("after-idle-cut@example.org", "Hello"))
            await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), what="delivery after the reconnect")
    finally:
        cutter.close()
        await cutter.wait_closed()


async def test_attachments_are_stored_with_the_message(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    async with running_app(db_url, tmp_path, email_settings(dovecot, None, dovecot.mailbox_settings(user))):
        await dovecot.append(user, fixture_bytes("attachments.eml"))
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), what="ingested")
    async with sessionmaker() as session:
        message = (await session.scalars(select(DbMessage).where(DbMessage.direction == Direction.inbound))).one()
    assert [a["filename"] for a in message.attachments] == ["Договор №5.pdf", "роутер.png"]
    for item in message.attachments:
        assert (tmp_path / "data" / "attachments" / item["storage_key"]).stat().st_size == item["size"]
    assert {r["filename"] for r in message.extra["rejected_attachments"]} == {"invoice.exe", "fake.pdf"}


async def test_a_customers_reply_in_the_same_batch_threads_onto_its_parent(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    others = [mail(f"other-{i}@example.org", "Hello", sender=f"other{i}@example.org") for i in range(6)]
    child = mail("child@example.org", "Still down", subject="Re: Internet", in_reply_to="parent@example.org")
    await dovecot.append(user, mail("parent@example.org", "My internet is down", subject="Internet"), *others, child)
    async with running_app(db_url, tmp_path, email_settings(dovecot, None, dovecot.mailbox_settings(user))):
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 8), what="all ingested")
    async with sessionmaker() as session:
        tickets = {m.external_message_id: m.ticket_id for m in (await session.scalars(
            select(DbMessage).where(DbMessage.direction == Direction.inbound))).all()}
    assert tickets["parent@example.org"] == tickets["child@example.org"]
    assert await count(sessionmaker, Ticket) == 7


class FlakyIngest:
    """The real ingest, except that chosen messages fail: with a bug (counted) or a database outage (not)."""

    def __init__(self, real: Any, broken: set[str], outage: set[str]) -> None:
        self.real = real
        self.broken = broken
        self.outage = outage
        self.calls: dict[str, int] = {}

    async def ingest(self, inbound: Any) -> Any:
        key = inbound.external_message_id
        self.calls[key] = self.calls.get(key, 0) + 1
        if key in self.broken:
            raise ValueError("a bug in the pipeline")
        if key in self.outage and self.calls[key] <= 4:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return await self.real.ingest(inbound)

    async def quarantine(self, *args: Any, **kwargs: Any) -> int:
        return int(await self.real.quarantine(*args, **kwargs))


async def test_a_message_that_keeps_failing_is_quarantined_and_an_outage_is_waited_out(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    from channels.base import ChannelContext
    from core.config import CoreSettings
    from core.events import EventBus
    from core.ingest.service import IngestService

    user = dovecot.add_user()
    await dovecot.append(user, mail("ok-1@example.org", "Hello", sender="a@example.org"),
                         mail("bug-1@example.org", "Hello", sender="b@example.org"),
                         mail("outage-1@example.org", "Hello", sender="c@example.org"),
                         mail("ok-2@example.org", "Hello", sender="d@example.org"))
    real = IngestService(sessionmaker, keyword_engine, EventBus(), CoreSettings(), responses=responses)
    flaky = FlakyIngest(real, broken={"bug-1@example.org"}, outage={"outage-1@example.org"})
    ctx = ChannelContext(ingest=flaky, bus=EventBus(), sessionmaker=sessionmaker,  # type: ignore[arg-type]
                         data_dir=tmp_path, files=LocalBackend(AttachmentStore(tmp_path / "attachments")))
    channel = EmailChannel(email_settings(dovecot, None, dovecot.mailbox_settings(user), ingest_attempts=3), ctx)
    await channel.start()
    try:
        await wait_for(lambda: _checkpoint_is(sessionmaker, user, 4), what="checkpoint past every mail")
    finally:
        await channel.stop()
    assert flaky.calls["bug-1@example.org"] == 3
    assert flaky.calls["outage-1@example.org"] == 5  # retried through the outage, never quarantined
    async with sessionmaker() as session:
        ids = set((await session.scalars(select(DbMessage.external_message_id).where(
            DbMessage.direction == Direction.inbound))).all())
        reasons = (await session.scalars(select(QuarantinedPayload.reason))).all()
    assert ids == {"ok-1@example.org", "outage-1@example.org", "ok-2@example.org"}
    assert len(reasons) == 1
    assert "ingest failed 3 times" in reasons[0]
    assert "a bug in the pipeline" in reasons[0]


async def test_agent_reply_with_an_uploaded_file_and_a_forwarded_inbound_one_reaches_smtp(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot, smtp_sink: SmtpSink, agent: tuple[Any, dict[str, str]]) -> None:
    user = dovecot.add_user()
    async with running_app(db_url, tmp_path, email_settings(dovecot, smtp_sink, dovecot.mailbox_settings(user))) \
            as app:
        await dovecot.append(user, fixture_bytes("attachments.eml"))
        await wait_for(lambda: len(smtp_sink.messages) == 1, what="the bot's answer by SMTP")
        async with sessionmaker() as session:
            ticket = (await session.scalars(select(Ticket))).one()
            inbound = (await session.scalars(select(DbMessage).where(DbMessage.direction == Direction.inbound))).one()
        customer_file = inbound.attachments[1]  # роутер.png, stored when the mail came in
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            r = await client.post("/attachments", headers=agent[1],
                                  files={"file": ("Инструкция.pdf", b"%PDF-1.4 manual", "application/pdf")})
            assert r.status_code == 201, r.text
            forwarded = {k: customer_file[k] for k in ("filename", "content_type", "size", "storage_key")}
            reply = await client.post(f"/tickets/{ticket.number}/reply", headers=agent[1], json={
                "text": "The manual is attached.", "attachments": [r.json(), forwarded]})
            assert reply.status_code == 201, reply.text
            await wait_for(lambda: len(smtp_sink.messages) == 2, what="the agent's reply by SMTP")
    agent_mail = smtp_sink.parsed()[1]
    parts = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in agent_mail.walk()
             if p.get_filename()]
    stored = (tmp_path / "data" / "attachments" / customer_file["storage_key"]).read_bytes()
    assert parts == [("Инструкция.pdf", "application/pdf", b"%PDF-1.4 manual"),
                     (customer_file["filename"], customer_file["content_type"], stored)]
    text = next(p for p in agent_mail.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
    assert text.get_payload(decode=True).decode().startswith("The manual is attached.")


async def test_one_reader_per_mailbox_across_instances_and_a_standby_takes_over(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    if db_engine.dialect.name != "postgresql":
        pytest.skip("several instances share a mailbox on PostgreSQL; SQLite serves one process")
    user = dovecot.add_user()
    box = dovecot.mailbox_settings(user, poll_seconds=0.3, use_idle=False)
    email = email_settings(dovecot, None, box, standby_seconds=0.2)
    first_instance = running_app(db_url, tmp_path / "first", email)
    first = channel_of(await first_instance.__aenter__()).workers[user]
    first_running = True
    try:
        await wait_for(lambda: first.health.state == "connected", what="the first instance reads")
        async with running_app(db_url, tmp_path / "second", email) as second_app:
            second = channel_of(second_app).workers[user]
            await wait_for(lambda: second.health.state == "standby", what="the second instance stands by")
            assert channel_of(second_app).health.state == "standby"
            await dovecot.append(user, mail("shared-1@example.org", "Hello"))
            await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), what="delivery")
            assert (first.ingested, second.ingested) == (1, 0)

            # The reader stops (or crashes): the standby reads on from the shared checkpoint.
            first_running = False
            await first_instance.__aexit__(None, None, None)
            await wait_for(lambda: second.health.state == "connected", what="take-over")
            await dovecot.append(user, mail("shared-2@example.org", "Hello again"))
            await wait_for(lambda: _eq(inbound_count(sessionmaker), 2), what="delivery after take-over")
            assert second.ingested == 1  # the first mail was not read twice
    finally:
        if first_running:
            await first_instance.__aexit__(None, None, None)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_tls_mailboxes_verify_the_server_and_read_mail(
        security: str, db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path, dovecot: Dovecot) -> None:
    trusted, untrusted = dovecot.add_user(), dovecot.add_user()
    port = dovecot.ssl_port if security == "ssl" else dovecot.port
    good = dovecot.mailbox_settings(trusted, security=security, port=port, ca_file=dovecot.ca_file)
    # Not signed by a trusted authority (the system's, here): refused, shown in health, never a crash.
    bad = dovecot.mailbox_settings(untrusted, security=security, port=port)
    await dovecot.append(trusted, mail(f"tls-{security}@example.org", "Hello over TLS"))
    await dovecot.append(untrusted, mail(f"untrusted-{security}@example.org", "Hello"))
    async with running_app(db_url, tmp_path, email_settings(dovecot, None, good, bad)) as app:
        channel = channel_of(app)
        await wait_for(lambda: channel.workers[trusted].health.state == "connected", what="TLS connection")
        await wait_for(lambda: _eq(inbound_count(sessionmaker), 1), what="delivery over TLS")
        await wait_for(lambda: channel.workers[untrusted].health.state == "error", what="refused certificate")
        assert "CERTIFICATE_VERIFY_FAILED" in (channel.workers[untrusted].health.last_error or "")
        assert channel.health.state == "degraded"
    assert await inbound_count(sessionmaker) == 1


async def test_starttls_refused_by_a_server_without_it_is_an_error_not_plaintext(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    # The implicit-TLS port cannot speak STARTTLS: connecting there in plain text must fail, not fall back.
    box = dovecot.mailbox_settings(user, security="starttls", port=dovecot.ssl_port, ca_file=dovecot.ca_file)
    async with running_app(db_url, tmp_path, email_settings(dovecot, None, box)) as app:
        worker = channel_of(app).workers[user]
        await wait_for(lambda: worker.health.state == "error", what="error")
        assert worker.health.last_error
