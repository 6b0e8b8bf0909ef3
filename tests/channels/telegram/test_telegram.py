"""The Telegram channel end to end: PTB's real HTTP stack against a local Bot API stand-in, both modes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.error import BadRequest, NetworkError

from api.app import create_app
from channels.base import PermanentSendError
from channels.config import ChannelsSettings, RestChannelSettings
from channels.telegram.adapter import TelegramChannel, TelegramRateLimited
from channels.telegram.settings import TelegramChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from core.cursors import repository as cursors
from core.cursors.models import ChannelCursor
from core.customers.models import ChannelIdentity, Customer
from core.outbox.models import OutboxMessage
from core.outbox.schemas import OutboundEnvelope, QuickReply
from core.quarantine.models import QuarantinedPayload
from core.tickets.models import Direction, Message
from tests.channels.telegram.botapi import TOKEN, FakeBotAPI, RawUpdate, fixture, running_bot_api
from tests.channels.telegram.test_parse import DELETE, at
from tests.conftest import REST_KEY, keyword_engine, make_settings, responses
from tests.support.waiting import wait_for

SECRET = "tg-webhook-secret"
CHAT = 5001


# PTB (22.2+) warns of its coming timedelta `retry_after` when it builds a RetryAfter; Python ignores deprecation
# warnings outside __main__ by default, so in production the 429 is a RetryAfter: here too, not an error.
RETRY_AFTER_DEPRECATION = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with running_bot_api() as api:
        yield api


def telegram_app(db_url: str, data_dir: Path, api: FakeBotAPI, mode: str, **overrides: Any) -> FastAPI:
    telegram = TelegramChannelSettings(
        enabled=True, token=SecretStr(TOKEN), mode=mode, base_url=api.base_url, base_file_url=api.base_file_url,
        webhook_url="https://bot.example/channels/telegram/webhook" if mode == "webhook" else None,
        webhook_secret=SecretStr(SECRET) if mode == "webhook" else None, poll_timeout_seconds=1,
        request_timeout_seconds=5, max_download_bytes=2500, retry_backoff_max_seconds=0.5, **overrides,
    )
    settings = make_settings(db_url, data_dir=data_dir, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), telegram=telegram,
        webchat=WebchatChannelSettings(enabled=False)))
    return create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[tuple[TelegramChannel, httpx.AsyncClient]]:
    async with app.router.lifespan_context(app):
        adapter = app.state.switchboard.channels.get("telegram")
        assert isinstance(adapter, TelegramChannel)
        await asyncio.wait_for(adapter.ready.wait(), 10)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield adapter, client


async def inbound(sm: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sm() as session:
        return list((await session.scalars(
            select(Message).where(Message.channel == "telegram", Message.direction == Direction.inbound)
            .order_by(Message.id))).all())


def webhook_post(client: httpx.AsyncClient, body: Any, secret: str | None = SECRET) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/channels/telegram/webhook", content=content, headers=headers)


# -- polling -------------------------------------------------------------------------------------------


async def test_polling_text_answer_with_button_and_handoff_callback(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    bot_api.push(fixture("text_message", 1))
    async with running(telegram_app(db_url, tmp_path, bot_api, "polling")):
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)
        answer = bot_api.called("sendMessage")[0]
        assert answer["text"] == "Hello! How can I help?"
        assert answer["reply_markup"] == {"inline_keyboard": [[{"text": "Talk to an operator",
                                                                "callback_data": "/human_handoff"}]]}
        assert bot_api.called("deleteWebhook")  # polling mode makes sure no webhook blocks getUpdates

        bot_api.push(fixture("callback_query", 2))
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 2)
        assert bot_api.called("answerCallbackQuery")[0]["callback_query_id"] == "cbq-1"
        assert bot_api.sent_texts(CHAT)[1].startswith("Connecting you with an operator")
        messages = await inbound(sessionmaker)
        assert [m.external_message_id for m in messages] == [f"{CHAT}:10", "cb:cbq-1"]
        assert messages[1].extra["quick_reply"] == "/human_handoff"
        assert messages[1].intent == "human_handoff"
        assert messages[0].ticket_id == messages[1].ticket_id  # one chat, one open ticket
    assert await offset_cursor(sessionmaker) == "3"


async def offset_cursor(sessionmaker: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessionmaker() as session:
        row = await cursors.get(session, "telegram", "123456")
    return row.value if row is not None else None


async def test_an_offset_file_of_an_older_version_is_imported_once(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    legacy = tmp_path / "telegram" / "offset-123456.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"offset": 5}))
    bot_api.push(fixture("text_message", 4, message_id=40, text="already handled before the upgrade"),
                 fixture("text_message", 5, message_id=50, text="internet problem"))
    async with running(telegram_app(db_url, tmp_path, bot_api, "polling")):
        await wait_for(lambda: bot_api.confirmed_offset >= 6, timeout=15)
    assert not legacy.exists()
    assert await offset_cursor(sessionmaker) == "6"
    assert [m.external_message_id for m in await inbound(sessionmaker)] == [f"{CHAT}:50"]


async def test_polling_restart_reprocesses_nothing_and_loses_nothing(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    updates = [fixture("text_message", i, message_id=100 + i, text=f"internet problem {i}") for i in range(1, 6)]
    bot_api.push(*updates)
    async with running(telegram_app(db_url, tmp_path, bot_api, "polling")):
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) >= 1)
        await wait_for(lambda: bot_api.confirmed_offset == 6 or len(bot_api.called("getUpdates")) >= 2)
    assert len(await inbound(sessionmaker)) == 5

    # A crash after the commits but before Telegram heard of them: the same updates come again, plus new ones.
    bot_api.updates.clear()
    bot_api.push(*updates, fixture("text_message", 6, message_id=200, text="one more thing"))
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(ChannelCursor))
    async with running(telegram_app(db_url, tmp_path, bot_api, "polling")):
        await wait_for(lambda: bot_api.confirmed_offset >= 7, timeout=15)
    messages = await inbound(sessionmaker)
    assert [m.external_message_id for m in messages] == [f"{CHAT}:{100 + i}" for i in range(1, 6)] + [f"{CHAT}:200"]


async def test_one_poller_per_bot_across_instances_and_a_standby_takes_over(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    if db_engine.dialect.name != "postgresql":
        pytest.skip("several instances share a bot on PostgreSQL; SQLite serves one process")
    first_instance = running(telegram_app(db_url, tmp_path / "first", bot_api, "polling", standby_seconds=0.2))
    first, _ = await first_instance.__aenter__()
    first_running = True
    try:
        await wait_for(lambda: len(bot_api.called("getUpdates")) >= 1)
        async with running(telegram_app(db_url, tmp_path / "second", bot_api, "polling",
                                         standby_seconds=0.2)) as (second, _):
            # Telegram answers a second concurrent getUpdates with 409 Conflict: the second instance stands by.
            await wait_for(lambda: second.health.state == "standby")
            assert first.health.state == "connected"
            bot_api.push(fixture("text_message", 1))
            await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)

            first_running = False
            await first_instance.__aexit__(None, None, None)
            await wait_for(lambda: second.health.state == "connected")
            bot_api.push(fixture("text_message", 2, message_id=11, text="hello again"))
            await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 2)
        assert [m.external_message_id for m in await inbound(sessionmaker)] == [f"{CHAT}:10", f"{CHAT}:11"]
    finally:
        if first_running:
            await first_instance.__aexit__(None, None, None)


async def test_polling_survives_a_database_outage_at_the_lease(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.jobs import registry

    real_lease = registry.exclusive
    calls = 0

    def flaky_lease(engine: Any, name: str) -> Any:
        nonlocal calls
        if name.startswith("telegram:"):
            calls += 1
            if calls == 1:
                raise ConnectionRefusedError("the database is down")
        return real_lease(engine, name)

    monkeypatch.setattr(registry, "exclusive", flaky_lease)
    bot_api.push(fixture("text_message", 1))
    async with running(telegram_app(db_url, tmp_path, bot_api, "polling", standby_seconds=0.2)) as (adapter, _):
        # The first attempt failed (shown in health); the next one polls, and the update is answered.
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)
        assert calls >= 2
        assert adapter.health.state == "connected"


def deep_update(update_id: int, depth: int = 5000) -> str:
    """An update nested deeper than Python's json module can read (its recursion limit is ~1,000)."""
    return (f'{{"update_id": {update_id}, "message": {{"message_id": 1, "date": 1735725600, '
            f'"chat": {{"id": {CHAT}, "type": "private"}}, "text": "x", "junk": ' + "[" * depth + "]" * depth + "}}")


def surrogate_updates(first_id: int) -> list[dict[str, Any]]:
    """A lone UTF-16 surrogate (valid as a JSON escape, not as UTF-8 nor in PostgreSQL) in the text, in the name."""
    in_text = fixture("text_message", first_id, message_id=700 + first_id, text="broken \ud800 text")
    in_name = fixture("text_message", first_id + 1, message_id=701 + first_id, text="my internet is down")
    in_name["message"]["from"]["first_name"] = "\ud800"
    in_name["message"]["chat"]["first_name"] = "\ud800"
    return [in_text, in_name]


async def quarantined(sm: async_sessionmaker[AsyncSession]) -> list[QuarantinedPayload]:
    async with sm() as session:
        return list((await session.scalars(select(QuarantinedPayload).order_by(QuarantinedPayload.id))).all())


async def test_polling_quarantines_poison_updates_and_goes_on(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    """An update nobody can read (5,000 levels deep), store (lone surrogates) or use (a chat that is a string) is
    kept with the reason and passed over; the updates behind it are answered, and the offset moves past all of them."""
    no_chat = fixture("text_message", 5, message_id=5, chat="nope")
    bot_api.push(fixture("text_message", 1, message_id=1, text="hello"), RawUpdate(2, deep_update(2)),
                 *surrogate_updates(3), no_chat, fixture("text_message", 6, message_id=6, text="hello again"))
    async with running(telegram_app(db_url, tmp_path, bot_api, "polling")) as (adapter, _client):
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 2, timeout=30)
        await wait_for(lambda: adapter._offset == 7, timeout=30)
    rows = await quarantined(sessionmaker)
    assert len(rows) == 4
    assert "unreadable update" in rows[0].reason and "RecursionError" in rows[0].reason
    assert '"update_id": 2' in rows[0].payload
    assert all("unusable update" in r.reason for r in rows[1:])
    assert "\\ud800" in rows[1].payload and "\\ud800" in rows[2].payload  # kept, escaped
    assert "message.chat is not an object" in rows[3].reason
    assert [m.text for m in await inbound(sessionmaker)] == ["hello", "hello again"]
    assert await offset_cursor(sessionmaker) == "7"


# -- webhook -------------------------------------------------------------------------------------------


async def test_webhook_poison_updates_are_quarantined_not_redelivered(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        r = await webhook_post(client, deep_update(1).encode())
        assert r.status_code == 200, r.text
        for update in surrogate_updates(2):
            r = await webhook_post(client, update)
            assert r.status_code == 200, r.text
        assert (await webhook_post(client, fixture("text_message", 4, text="hello"))).status_code == 200
        rows = await quarantined(sessionmaker)
        assert len(rows) == 3
        assert "RecursionError" in rows[0].reason and rows[0].payload.startswith('{"update_id": 1')
        assert "unusable update" in rows[1].reason and "\\ud800" in rows[1].payload
        assert "unusable update" in rows[2].reason and "\\ud800" in rows[2].payload
        assert [m.text for m in await inbound(sessionmaker)] == ["hello"]
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)


async def test_webhook_malformed_updates_are_kept_with_the_field_named_and_presses_answered(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    """Wrong types, a missing chat, non-object fields, values out of range or unstorable: each update is acknowledged
    (200, never a 5xx that Telegram would resend for ever), kept with the reason, and passed over when Telegram
    resends it anyway; a button press is answered whatever became of it, so the customer's button stops spinning."""
    malformed = [
        (at(fixture("text_message", 1), "message.chat", DELETE), "message.chat is missing"),
        (at(fixture("text_message", 2), "message.chat.id", 2**70), "message.chat.id is out of range"),
        (at(fixture("text_message", 3), "message.date", 10**20), "message.date is out of range"),
        (at(fixture("text_message", 4), "message.text", {"x": 1}), "message.text is not a string"),
        (at(fixture("text_message", 5), "message.from.language_code", 5), "language_code is not a string"),
        (at(fixture("photo_message", 6), "message.photo", "big-photo"), "message.photo is not a list"),
        (at(fixture("document_message", 7), "message.document.file_size", -1), "file_size is out of range"),
        (at(fixture("contact_own", 8), "message.contact.phone_number", "7" * 100), "phone_number is over 64"),
        (at(fixture("text_message", 9), "message.text", "a NUL \x00 inside"), "NUL character"),
        (at(at(fixture("callback_query", 10), "callback_query.id", "cbq-10"), "callback_query.message.chat", "nope"),
         "callback_query.message.chat is not an object"),
        (at(fixture("callback_query", 11), "callback_query.id", 42), "callback_query.id is not a string"),
        (at(fixture("text_message", 1), "update_id", True), "not a Telegram update"),
    ]
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        for update, _reason in malformed:
            r = await webhook_post(client, update)
            assert r.status_code == 200, r.text
        rows = await quarantined(sessionmaker)
        assert len(rows) == len(malformed)
        for row, (update, reason) in zip(rows, malformed, strict=True):
            assert reason in row.reason, (reason, row.reason)
            assert json.loads(row.payload)["update_id"] == update["update_id"]
        # The press with a readable id is answered (the one without cannot be); Telegram's resend is passed over.
        assert [p["callback_query_id"] for p in bot_api.called("answerCallbackQuery")] == ["cbq-10"]
        assert (await webhook_post(client, malformed[1][0])).status_code == 200
        assert len(await quarantined(sessionmaker)) == len(malformed)

        # Text of spaces only is no command and no appeal: the polite answer, as for a sticker.
        assert (await webhook_post(client, fixture("text_message", 12, text="   "))).status_code == 200
        assert [t[:45] for t in bot_api.sent_texts(CHAT)] == ["Sorry, I cannot read this kind of message yet"]
        assert await inbound(sessionmaker) == []
        assert (await webhook_post(client, fixture("text_message", 13))).status_code == 200
        assert [m.text for m in await inbound(sessionmaker)] == ["hello there"]


@RETRY_AFTER_DEPRECATION
async def test_send_errors_keep_their_meaning_for_the_outbox(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Through the raw send: the message id comes back; a refusal (403) or a malformed request (400) is permanent,
    429 is a rate limit with Telegram's wait, a 5xx or an unreachable Bot API is a network error the outbox retries."""
    stand_in = running_bot_api()
    bot_api = await stand_in.__aenter__()
    stand_in_up = True
    try:
        async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (adapter, _client):
            envelope = OutboundEnvelope(
                outbox_id=1, message_id=1, ticket_id=1, channel="telegram", recipient=str(CHAT), ticket_number="T-1",
                text="Hello! How can I help?", quick_replies=[QuickReply(title="Talk to an operator",
                                                                         payload="/human_handoff")])
            assert await adapter.send(envelope) == "1001"  # the stand-in's first message id
            [sent] = bot_api.called("sendMessage")
            assert sent == {"chat_id": CHAT, "text": "Hello! How can I help?", "reply_markup": {
                "inline_keyboard": [[{"text": "Talk to an operator", "callback_data": "/human_handoff"}]]}}

            bot_api.message_failures = [(403, "Forbidden: bot was blocked by the user"),
                                        (429, "Too Many Requests: retry after 7"),
                                        (400, "Bad Request: chat not found"), (502, "Bad Gateway"),
                                        (500, "Internal Server Error")]
            with pytest.raises(PermanentSendError, match="blocked by the user"):
                await adapter.send(envelope)
            assert "blocked" in adapter.health.details["last_refusal"]
            with pytest.raises(TelegramRateLimited) as limited:
                await adapter.send(envelope)
            assert limited.value.retry_after == 7
            with pytest.raises(PermanentSendError, match="Chat not found"):
                await adapter.send(envelope)
            for _ in range(2):
                with pytest.raises(NetworkError) as failed:
                    await adapter.send(envelope)
                assert not isinstance(failed.value, BadRequest)  # not permanent: the outbox tries again
            assert bot_api.message_failures == []

            await stand_in.__aexit__(None, None, None)
            stand_in_up = False
            with pytest.raises(NetworkError):
                await adapter.send(envelope)
    finally:
        if stand_in_up:
            await stand_in.__aexit__(None, None, None)


async def test_webhook_secret_malformed_and_duplicate(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        assert bot_api.webhook is not None
        assert bot_api.webhook["url"] == "https://bot.example/channels/telegram/webhook"
        assert bot_api.webhook["secret_token"] == SECRET
        assert set(bot_api.webhook["allowed_updates"]) == {"message", "edited_message", "callback_query"}

        update = fixture("text_message", 10)
        assert (await webhook_post(client, update, secret=None)).status_code == 403
        assert (await webhook_post(client, update, secret="wrong")).status_code == 403
        assert await inbound(sessionmaker) == []

        r = await webhook_post(client, update)
        assert r.status_code == 200, r.text
        r = await webhook_post(client, update)  # Telegram resends when it missed our 200
        assert r.status_code == 200
        assert len(await inbound(sessionmaker)) == 1
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)

        # Unparseable payloads are kept with the reason and acknowledged, so Telegram does not resend forever.
        assert (await webhook_post(client, b"{not json")).status_code == 200
        assert (await webhook_post(client, fixture("malformed_update", 11))).status_code == 200
        assert (await webhook_post(client, {"no": "update id"})).status_code == 200
        async with sessionmaker() as session:
            rows = (await session.scalars(select(QuarantinedPayload).order_by(QuarantinedPayload.id))).all()
        assert [r.channel for r in rows] == ["telegram"] * 3
        assert "invalid JSON" in rows[0].reason
        assert "not-a-number" in rows[1].payload
        assert "update_id" in rows[2].reason
        assert len(await inbound(sessionmaker)) == 1


async def test_webhook_outage_is_redelivered_and_an_unusable_callback_quarantined(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    """An update that cannot be stored is a 5xx (Telegram resends it); one that can never be used is kept."""
    from sqlalchemy.exc import OperationalError

    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (adapter, client):
        ingest = adapter.ctx.ingest
        real = ingest.ingest

        async def down(*_args: Any) -> Any:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))

        ingest.ingest = down  # type: ignore[method-assign]
        try:
            r = await webhook_post(client, fixture("text_message", 30))
        finally:
            ingest.ingest = real  # type: ignore[method-assign]
        assert r.status_code == 503
        assert await inbound(sessionmaker) == []
        r = await webhook_post(client, fixture("text_message", 30))  # Telegram's redelivery
        assert r.status_code == 200
        assert len(await inbound(sessionmaker)) == 1

        callback = fixture("callback_query", 31)
        del callback["callback_query"]["data"]
        assert (await webhook_post(client, callback)).status_code == 200
        async with sessionmaker() as session:
            reasons = (await session.scalars(select(QuarantinedPayload.reason))).all()
        assert len(reasons) == 1
        assert "unusable update" in reasons[0]
        assert "without data" in reasons[0]


@pytest.mark.parametrize(("file_name", "data", "kept_as", "refused"), [
    ("договор.pdf", b"%PDF-1.4 contract", "договор.pdf", None),
    ("..\\..\\x", b"plain", "x", None),
    ("a\x00b\u202etxt.pdf", b"%PDF-1.4", "abtxt.pdf", None),  # NUL and the right-to-left override go
    ("я" * 150 + ".pdf", b"%PDF-1.4", "я" * 73 + ".pdf", None),  # 304 bytes: capped at 150, extension kept
    ("setup.exe", b"MZ\x90\x00", None, "files of type .exe are not accepted: they can run code"),
    ("evil\u202efdp.exe", b"MZ", None, "files of type .exe are not accepted: they can run code"),
    ("invoice.pdf", b"MZ\x90\x00", None, "executable content is not accepted"),
])
async def test_documents_follow_the_attachment_policy(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
    bot_api: FakeBotAPI, file_name: str, data: bytes, kept_as: str | None, refused: str | None,
) -> None:
    """Names keep their Unicode; a refused file leaves the message in, listed with the reason (as for e-mail)."""
    bot_api.files = {"doc-1": data}
    document = {"file_id": "doc-1", "file_unique_id": "doc-u1", "file_name": file_name,
                "mime_type": "application/pdf" if file_name.endswith(".pdf") else "application/octet-stream",
                "file_size": len(data)}
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        update = fixture("document_message", 1, document=document, caption="see the file")
        assert (await webhook_post(client, update)).status_code == 200
        [message] = await inbound(sessionmaker)
    assert message.text == "see the file"  # the message is kept either way
    if refused is None:
        [stored] = message.attachments
        assert stored["filename"] == kept_as and "rejected_attachments" not in message.extra
        assert (tmp_path / "attachments" / stored["storage_key"]).read_bytes() == data
    else:
        assert message.attachments == []
        [record] = message.extra["rejected_attachments"]
        assert record["reason"] == refused and record["size"] == len(data)
        assert not list((tmp_path / "attachments").rglob("*.exe"))
        if file_name.endswith(".exe"):  # refused by its name: never downloaded
            assert bot_api.called("getFile") == []


async def test_webhook_media_edits_start_contact_and_unsupported(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    bot_api.files = {"big-photo": b"\xff\xd8\xff" + b"p" * 2045, "doc-1": b"%PDF" + b"d" * 2996}
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        # /start: a greeting in the user's language, no ticket.
        assert (await webhook_post(client, fixture("start_ru", 1))).status_code == 200
        assert bot_api.sent_texts(CHAT)[-1].startswith("Здравствуйте! Я бот поддержки")
        assert bot_api.called("sendMessage")[-1]["reply_markup"]["keyboard"][0][0]["request_contact"] is True
        # A sticker: a polite answer, no ticket.
        assert (await webhook_post(client, fixture("sticker", 2))).status_code == 200
        assert bot_api.sent_texts(CHAT)[-1].startswith("Извините, такие сообщения я пока не понимаю")
        assert await inbound(sessionmaker) == []

        # The user's own contact: the phone is linked and verified.
        assert (await webhook_post(client, fixture("contact_own", 3))).status_code == 200
        assert "+79161234567" in bot_api.sent_texts(CHAT)[-1]
        async with sessionmaker() as session:
            identity = (await session.scalars(select(ChannelIdentity).where(
                ChannelIdentity.channel == "telegram", ChannelIdentity.external_id == str(CHAT)))).one()
            customer = await session.get(Customer, identity.customer_id)
        assert identity.verified is True
        assert customer is not None and customer.phone == "+79161234567"
        # Someone else's contact card links nothing.
        other = fixture("contact_own", 4, message_id=40)
        other["message"]["contact"] = {"phone_number": "+70000000000", "first_name": "Mom", "user_id": 777}
        assert (await webhook_post(client, other)).status_code == 200
        assert "поделитесь" in bot_api.sent_texts(CHAT)[-1]

        # A photo (largest size downloaded) and a document over the size limit (refused, with the reason).
        assert (await webhook_post(client, fixture("photo_message", 5))).status_code == 200
        assert (await webhook_post(client, fixture("document_message", 6))).status_code == 200
        messages = await inbound(sessionmaker)
        assert messages[0].text == "my router lights"
        photo = messages[0].attachments[0]
        assert photo["content_type"] == "image/jpeg" and photo["size"] == 2048
        assert (tmp_path / "attachments" / photo["storage_key"]).read_bytes() == bot_api.files["big-photo"]
        assert messages[1].attachments == []
        [doc] = messages[1].extra["rejected_attachments"]
        assert doc == {"filename": "contract scan.pdf", "content_type": "application/pdf", "size": 3000,
                       "reason": "the file is 3000 bytes; the limit is 2500"}
        assert [p["file_id"] for p in bot_api.called("getFile")] == ["big-photo"]  # no download over the limit

        # An edit is a new message with its own id; the original stays as it was.
        assert (await webhook_post(client, fixture("text_message", 7))).status_code == 200
        assert (await webhook_post(client, fixture("edited_message", 8))).status_code == 200
        ids = [m.external_message_id for m in await inbound(sessionmaker)]
        assert ids[-2:] == [f"{CHAT}:10", f"edit:{CHAT}:10:1735725660"]


@RETRY_AFTER_DEPRECATION
async def test_blocked_bot_fails_permanently_and_rate_limit_is_retried(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        bot_api.rate_limit_next = 1
        assert (await webhook_post(client, fixture("text_message", 1))).status_code == 200
        await wait_for(lambda: len(bot_api.called("sendMessage")) == 2, timeout=15)  # the 429, then the retry

        bot_api.blocked.add(6002)
        blocked = fixture("text_message", 2, message_id=50)
        blocked["message"]["chat"]["id"] = 6002
        blocked["message"]["from"]["id"] = 6002
        assert (await webhook_post(client, blocked)).status_code == 200

        async def outbox_status() -> list[tuple[str, int]]:
            async with sessionmaker() as session:
                return [(r.status.value, r.attempts) for r in (await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.recipient == "6002"))).all()]

        for _ in range(200):
            if (await outbox_status())[:1] and (await outbox_status())[0][0] == "failed":
                break
            await asyncio.sleep(0.05)
        status = await outbox_status()
        assert status == [("failed", 1)]  # permanent: not retried
        async with sessionmaker() as session:
            row = (await session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "6002"))).one()
            assert "blocked" in (row.last_error or "")
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


async def reply_with_files(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession],
                           bot_api: FakeBotAPI, text: str, files: list[tuple[str, bytes, str]]) -> tuple[int, int]:
    """The customer writes (the bot answers), then an agent replies with uploaded files: (ticket id, message id)."""
    from core.users.models import Role
    from tests.conftest import make_user

    _, token = await make_user(sessionmaker, Role.agent, f"tg-agent-{len(files)}-{len(text)}@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await webhook_post(client, fixture("text_message", 1))).status_code == 200
    await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)
    ticket_id = (await inbound(sessionmaker))[0].ticket_id
    infos = [(await client.post("/attachments", headers=auth, files={"file": f})).json() for f in files]
    r = await client.post(f"/tickets/{ticket_id}/reply", headers=auth, json={"text": text, "attachments": infos})
    assert r.status_code == 201, r.text
    return ticket_id, int(r.json()["id"])


async def test_agent_reply_sends_stored_attachments_as_documents_after_the_text(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (adapter, client):
        files = [("счёт.pdf", b"%PDF-1.4 invoice", "application/pdf"), ("photo.png", b"\x89PNG data", "image/png")]
        ticket_id, _ = await reply_with_files(client, sessionmaker, bot_api, "Your invoice and the photo.", files)
        await wait_for(lambda: len(bot_api.called("sendDocument")) == 2)
        names = [name for name, _params in bot_api.calls if name in ("sendMessage", "sendDocument")]
        assert names[-3:] == ["sendMessage", "sendDocument", "sendDocument"]  # the text first, then each file
        # The agent's name heads the reply (make_user names them after their e-mail's first part).
        assert bot_api.sent_texts(CHAT)[-1] == "tg-agent-2-27:\nYour invoice and the photo."
        sent = bot_api.called("sendDocument")
        assert [int(p["chat_id"]) for p in sent] == [CHAT, CHAT]
        assert [(p["document"]["filename"], p["document"]["content"]) for p in sent] == [
            ("счёт.pdf", b"%PDF-1.4 invoice"), ("photo.png", b"\x89PNG data")]

        # A file that vanished from the store cannot be sent, ever: a permanent failure, not a retry loop.
        from channels.base import PartialDelivery

        envelope = OutboundEnvelope(outbox_id=1, message_id=1, ticket_id=ticket_id, channel="telegram",
                                    recipient=str(CHAT), ticket_number="T-1", text="x",
                                    attachments=[{"filename": "a", "storage_key": "uploads/00/gone/a.pdf"}])
        # The text went out first: the failure says so, and it is permanent.
        with pytest.raises(PartialDelivery) as failed:
            await adapter.send(envelope)
        assert failed.value.delivered_parts == 1
        assert isinstance(failed.value.cause, PermanentSendError)
        assert "not in the attachment store" in str(failed.value.cause)
        for escaping in ("../../etc/passwd", "/etc/passwd"):
            # Nothing delivered before (a retry past the text): a plain permanent failure.
            with pytest.raises(PermanentSendError):
                await adapter.send(envelope.model_copy(update={"attachments": [{"storage_key": escaping}],
                                                               "delivered_parts": 1}))


async def test_a_file_failing_after_the_text_is_retried_without_sending_the_text_again(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        files = [("a.pdf", b"%PDF-1.4 a", "application/pdf"), ("b.pdf", b"%PDF-1.4 b", "application/pdf")]
        bot_api.fail_documents_next = 2  # the first file fails twice, after the reply's text went out
        _, message_id = await reply_with_files(client, sessionmaker, bot_api, "Both files.", files)

        async def outbox_row() -> OutboxMessage:
            async with sessionmaker() as session:
                return (await session.scalars(select(OutboxMessage).where(
                    OutboxMessage.message_id == message_id))).one()

        for _ in range(300):
            if (await outbox_row()).status.value == "sent":
                break
            await asyncio.sleep(0.05)
        row = await outbox_row()
        assert (row.status.value, row.attempts) == ("sent", 3)
        assert row.payload["delivered_parts"] == 1
        assert bot_api.sent_texts(CHAT).count("tg-agent-2-11:\nBoth files.") == 1  # the text went once
        delivered = [p["document"]["filename"] for p in bot_api.called("sendDocument")]
        assert delivered == ["a.pdf", "a.pdf", "a.pdf", "b.pdf"]  # two failures, then each file once
        assert row.provider_message_id is not None


async def test_csat_buttons_take_ascii_scores_only(db_url: str, db_engine: Any, tmp_path: Path,
                                                   sessionmaker: async_sessionmaker[AsyncSession],
                                                   bot_api: FakeBotAPI) -> None:
    """A callback "/csat ¹": `"¹".isdigit()` is true and `int("¹")` raises; the update was quarantined, not stored."""
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        for update_id, data in ((1, "/csat ¹"), (2, "/csat 4")):
            update = fixture("callback_query", update_id)
            update["callback_query"].update(id=f"cbq-{update_id}", data=data)
            assert (await webhook_post(client, update)).status_code == 200
        scores = [m.extra.get("csat") for m in await inbound(sessionmaker)]
        assert scores == [None, 4]


async def test_an_agent_typing_a_reply_shows_typing_in_the_chat_and_the_reply_carries_their_name(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    from core.clock import ManualClock
    from core.users import service as users
    from core.users.models import Role
    from tests.conftest import make_user
    from tests.console.conftest import csrf_of, login

    app = telegram_app(db_url, tmp_path, bot_api, "webhook")
    async with running(app) as (_adapter, client):
        clock = ManualClock()
        app.state.switchboard.clock = clock  # the relay (made on first use) throttles on this clock
        user, token = await make_user(sessionmaker, Role.agent, "anna.petrova@test.example")
        async with sessionmaker() as session, session.begin():
            anna = await users.get(session, user.id)
            anna.name = "Anna Petrova"
        assert (await webhook_post(client, fixture("text_message", 1))).status_code == 200
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 1)
        ticket_id = (await inbound(sessionmaker))[0].ticket_id
        assert (await login(client, "anna.petrova@test.example")).status_code == 303
        csrf = csrf_of((await client.get("/console/inbox")).text)
        url = f"/console/tickets/{ticket_id}/presence"

        async def announce(**form: str) -> None:
            r = await client.post(url, data={"csrf_token": csrf, **form})
            assert r.status_code == 204, r.text

        await announce(state="viewing")
        await announce(state="typing", what="note")  # an internal note: the customer sees nothing
        assert bot_api.called("sendChatAction") == []
        await announce(state="typing", what="reply")
        assert bot_api.called("sendChatAction") == [{"chat_id": CHAT, "action": "typing"}]
        clock.advance(2)
        await announce(state="typing", what="reply")  # throttled: Telegram still shows the last one
        assert len(bot_api.called("sendChatAction")) == 1
        clock.advance(2)
        await announce(state="typing", what="reply")
        assert len(bot_api.called("sendChatAction")) == 2

        bot_api.blocked.add(CHAT)  # Telegram refusing the action is not the agent's page's problem
        clock.advance(5)
        await announce(state="typing", what="reply")
        bot_api.blocked.clear()

        r = await client.post(f"/tickets/{ticket_id}/reply", headers={"Authorization": f"Bearer {token}"},
                              json={"text": "Please restart the router."})
        assert r.status_code == 201, r.text
        await wait_for(lambda: len(bot_api.sent_texts(CHAT)) == 2)
        assert bot_api.sent_texts(CHAT)[-1] == "Anna:\nPlease restart the router."
