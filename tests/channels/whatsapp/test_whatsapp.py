"""The WhatsApp channel end to end: the webhook route in, httpx out to a local Graph API stand-in over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.telegram.settings import TelegramChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from channels.whatsapp.adapter import WhatsappChannel, interactive, signature
from channels.whatsapp.settings import WhatsappChannelSettings
from core.clock import SYSTEM_CLOCK, Clock
from core.customers.models import ChannelIdentity, Customer
from core.outbox.models import OutboxMessage
from core.outbox.schemas import QuickReply
from core.quarantine.models import QuarantinedPayload
from core.tickets.models import Direction, Message
from tests.channels.whatsapp.graphapi import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphAPI,
    button_reply,
    dumps,
    media_message,
    notification,
    running_graph_api,
    sign,
    status,
    text_message,
)
from tests.conftest import REST_KEY, keyword_engine, make_settings, responses
from tests.support.waiting import wait_for

WA = "79001234567"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with running_graph_api() as api:
        yield api


def wa_app(db_url: str, data_dir: Path, api: FakeGraphAPI, *, jobs_clock: Clock = SYSTEM_CLOCK,
           **overrides: Any) -> FastAPI:
    wa = WhatsappChannelSettings(
        enabled=True, access_token=SecretStr(TOKEN), phone_number_id=PHONE_NUMBER_ID,
        app_secret=SecretStr(APP_SECRET), verify_token=SecretStr(VERIFY_TOKEN), api_base_url=api.base_url,
        request_timeout_seconds=5, retry_backoff_max_seconds=0.5, language="en", **overrides)
    settings = make_settings(db_url, data_dir=data_dir, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), telegram=TelegramChannelSettings(),
        webchat=WebchatChannelSettings(enabled=False), whatsapp=wa))
    return create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False,
                      jobs_clock=jobs_clock)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[tuple[WhatsappChannel, httpx.AsyncClient]]:
    async with app.router.lifespan_context(app):
        adapter = app.state.switchboard.channels.get("whatsapp")
        assert isinstance(adapter, WhatsappChannel)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await wait_for(adapter.ready.is_set, "the channel checked its token")
            yield adapter, client


def post(client: httpx.AsyncClient, body: Any, *, secret: str | None = APP_SECRET,
         header: str | None = None) -> Any:
    content = body if isinstance(body, bytes) else dumps(body)
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(content, secret)
    return client.post("/channels/whatsapp/webhook", content=content, headers=headers)


async def inbound(sm: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sm() as session:
        return list((await session.scalars(
            select(Message).where(Message.channel == "whatsapp", Message.direction == Direction.inbound)
            .order_by(Message.id))).all())


async def quarantined(sm: async_sessionmaker[AsyncSession]) -> list[QuarantinedPayload]:
    async with sm() as session:
        return list((await session.scalars(select(QuarantinedPayload).order_by(QuarantinedPayload.id))).all())


async def outbox_rows(sm: async_sessionmaker[AsyncSession], recipient: str) -> list[OutboxMessage]:
    async with sm() as session:
        return list((await session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == recipient)
                                           .order_by(OutboxMessage.id))).all())


# -- units -----------------------------------------------------------------------------------------------


def test_signature_interactive_and_settings() -> None:
    assert signature(APP_SECRET, b"{}") == sign(b"{}")
    assert signature(APP_SECRET, b"{}") != sign(b"{} ")
    buttons = interactive("Pick", [QuickReply(title="Talk to an operator, please now", payload="/human_handoff")],
                          "Choose")
    assert buttons["type"] == "button"
    assert buttons["action"]["buttons"][0]["reply"] == {"id": "/human_handoff", "title": "Talk to an operator,"}
    rows = interactive("Rate us", [QuickReply(title=str(n), payload=f"/csat {n}") for n in range(1, 6)], "Choose")
    assert rows["type"] == "list" and rows["action"]["button"] == "Choose"
    assert [r["id"] for r in rows["action"]["sections"][0]["rows"]] == [f"/csat {n}" for n in range(1, 6)]
    with pytest.raises(ValidationError, match="access_token, phone_number_id, app_secret, verify_token"):
        WhatsappChannelSettings(enabled=True)
    with pytest.raises(ValidationError):
        WhatsappChannelSettings(phone_number_id="12; drop")
    assert WhatsappChannelSettings().enabled is False


# -- webhook ----------------------------------------------------------------------------------------------


async def test_handshake_and_signature_are_checked(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
        r = await client.get("/channels/whatsapp/webhook", params=params)
        assert (r.status_code, r.text) == (200, "1158201444")
        assert r.headers["content-type"].startswith("text/plain")
        for wrong in ({"hub.verify_token": "nope"}, {"hub.mode": "unsubscribe"}, {"hub.challenge": None}):
            query = {k: v for k, v in (params | wrong).items() if v is not None}
            assert (await client.get("/channels/whatsapp/webhook", params=query)).status_code == 403

        event = text_message(WA, "wamid.IN1", "Hello")
        r = await post(client, event, secret=None)
        assert r.status_code == 403 and "X-Hub-Signature-256" in r.text
        for header in ("sha256=" + "0" * 64, sign(dumps(event), "other-secret"), "garbage", "sha1=abc", "sha256=zz"):
            assert (await post(client, event, header=header)).status_code == 403
        # Signed over other bytes than the ones sent (a replayed signature on an altered body).
        altered = dumps(text_message(WA, "wamid.IN1", "Hello!"))
        assert (await post(client, altered, header=sign(dumps(event)))).status_code == 403
        assert (await post(client, b"{not json", secret=None)).status_code == 403
        assert await inbound(sessionmaker) == [] and await quarantined(sessionmaker) == []

        health = (await client.get("/health")).json()["channels"]["whatsapp"]
        assert health["state"] == "connected" and health["display_phone_number"] == "+1 555-078-3881"
        assert health["phone_number_id"] == PHONE_NUMBER_ID
        assert TOKEN not in json.dumps(health) and APP_SECRET not in json.dumps(health)
        assert all("access_token" not in params for _m, _p, params in graph.calls)


async def test_text_answer_with_button_redelivery_handoff_and_phone_identity(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    async with running(wa_app(db_url, tmp_path, graph)) as (adapter, client):
        event = text_message(WA, "wamid.IN1", "Hello")
        r = await post(client, event)
        assert (r.status_code, r.text) == (200, "ok")
        await wait_for(lambda: len(graph.texts(WA)) == 1)
        [answer] = graph.sent
        assert answer["type"] == "interactive" and answer["to"] == WA
        assert answer["interactive"]["body"]["text"] == "Hello! How can I help?"
        [button] = answer["interactive"]["action"]["buttons"]
        assert button["reply"] == {"id": "/human_handoff", "title": "Talk to an operator"}

        # Meta resends a notification it got no 200 for: the fast path, then a restart's resend.
        assert (await post(client, event)).text == "ok"
        adapter._recent.clear()
        assert (await post(client, event)).text == "ok"
        assert len(await inbound(sessionmaker)) == 1

        assert (await post(client, button_reply(WA, "wamid.IN2", "/human_handoff", "Talk to an operator"))).text \
            == "ok"
        await wait_for(lambda: len(graph.texts(WA)) == 2)
        assert graph.texts(WA)[1].startswith("Connecting you with an operator")
        messages = await inbound(sessionmaker)
        assert [m.external_message_id for m in messages] == ["wamid.IN1", "wamid.IN2"]
        assert messages[1].extra["quick_reply"] == "/human_handoff" and messages[1].intent == "human_handoff"
        assert messages[0].ticket_id == messages[1].ticket_id
        assert messages[0].created_at.replace(tzinfo=UTC).timestamp() == 1764500000

        async with sessionmaker() as session:
            identity = (await session.scalars(select(ChannelIdentity).where(
                ChannelIdentity.channel == "whatsapp"))).one()
            customer = await session.get(Customer, identity.customer_id)
        assert identity.external_id == WA and identity.verified is True
        assert customer is not None and customer.phone == f"+{WA}" and customer.name == "Kerry Fisher"

        # A message to another number of the same app is not taken; a location gets the "text only" answer.
        other = text_message("79005550000", "wamid.IN3", "Hello")
        other["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
        assert (await post(client, other)).text == "ok"
        image = notification({"messages": [{"from": WA, "id": "wamid.IN4", "timestamp": "1764500300",
                                            "type": "location", "location": {"latitude": 55.75,
                                                                             "longitude": 37.62}}]})
        assert (await post(client, image)).text == "ok"
        await wait_for(lambda: len(graph.texts(WA)) == 3)
        assert graph.texts(WA)[2].startswith("Sorry, I cannot read this kind of message yet")
        assert len(await inbound(sessionmaker)) == 2
        assert "phone_number_id" in (await quarantined(sessionmaker))[0].reason


async def test_statuses_are_the_delivery_state_of_the_outbound_message(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    from core.users.models import Role
    from tests.conftest import make_user
    from tests.console.conftest import login

    await make_user(sessionmaker, Role.agent, "wa-console@test.example")
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        assert (await post(client, text_message(WA, "wamid.IN1", "Hello"))).text == "ok"

        async def sent() -> OutboxMessage | None:
            rows = await outbox_rows(sessionmaker, WA)
            return rows[0] if rows and rows[0].status.value == "sent" else None

        row = await wait_for(sent, "the answer is sent")
        wamid = row.provider_message_id
        assert wamid == graph.sent[0]["_id"]

        async def delivery() -> dict[str, Any] | None:
            rows = await outbox_rows(sessionmaker, WA)
            value = rows[0].payload.get("delivery")
            return value if isinstance(value, dict) else None

        assert await delivery() is None
        for state, stamp in (("sent", "1764500010"), ("read", "1764500030"), ("delivered", "1764500020")):
            assert (await post(client, status(wamid, state, WA, stamp))).text == "ok"
        # Out of order: "delivered" after "read" does not step back.
        assert await delivery() == {"state": "read", "at": "2025-11-30T10:53:50+00:00"}
        # The console shows it next to the outbox's own state.
        assert (await login(client, "wa-console@test.example")).status_code == 303
        number = (await inbound(sessionmaker))[0].ticket_id
        async with sessionmaker() as session:
            from core.tickets.models import Ticket

            ticket = await session.get(Ticket, number)
            assert ticket is not None
        page = (await client.get(f"/console/tickets/{ticket.number}")).text
        assert 'data-receipt="read"' in page
        failure = [{"code": 131026, "title": "Message undeliverable"}]
        assert (await post(client, status(wamid, "failed", WA, errors=failure))).text == "ok"
        value = await delivery()
        assert value is not None and value["state"] == "failed" and value["error"] == "131026: Message undeliverable"
        [row] = await outbox_rows(sessionmaker, WA)
        assert "131026" in (row.last_error or "")
        page = (await client.get(f"/console/tickets/{ticket.number}")).text
        assert 'data-receipt="failed"' in page and "131026: Message undeliverable" in page
        # A status of a message this system did not send, and a hostile one, change nothing else.
        assert (await post(client, status("wamid.UNKNOWN", "read", WA))).text == "ok"
        assert (await post(client, status(wamid, "exploded", WA))).text == "ok"
        assert "unknown status" in (await quarantined(sessionmaker))[-1].reason
        assert (await delivery() or {})["state"] == "failed"


async def test_rate_limits_and_outages_are_retried_and_a_closed_window_fails_for_good(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        graph.rate_limit_next, graph.server_error_next = 1, 1
        assert (await post(client, text_message(WA, "wamid.IN1", "Hello"))).text == "ok"

        async def row_in(recipient: str, state: str) -> OutboxMessage | None:
            rows = await outbox_rows(sessionmaker, recipient)
            return rows[0] if rows and rows[0].status.value == state else None

        row = await wait_for(lambda: row_in(WA, "sent"), "sent after a 500 and a 429", timeout=30)
        assert row.attempts == 3 and len(graph.sent) == 1

        late = "79007654321"
        graph.window_closed.add(late)
        assert (await post(client, text_message(late, "wamid.IN9", "Hello"))).text == "ok"
        row = await wait_for(lambda: row_in(late, "failed"), "the closed window fails for good", timeout=30)
        assert row.attempts == 1  # permanent: not retried
        error = row.last_error or ""
        assert "rejected" in error and "24-hour customer service window" in error and "131047" in error


def deep(depth: int = 5000) -> bytes:
    return b'{"object": "whatsapp_business_account", "entry": ' + b"[" * depth + b"]" * depth + b"}"


async def test_malformed_and_hostile_notifications_are_quarantined_and_acknowledged(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        no_text = text_message(WA, "wamid.B1", "x")
        no_text["entry"][0]["changes"][0]["value"]["messages"][0]["text"] = {"body": ["not", "a", "string"]}
        bad_from = text_message("+7 (900) <script>", "wamid.B2", "Hello")
        surrogate = dumps(text_message(WA, "wamid.B3", "x")).replace(b'"x"', b'"broken \\ud800 text"')
        bad: list[Any] = [
            deep(), b'{"object": "whatsapp_business_account", ', b'{"object": "page", "entry": []}',
            {"object": "whatsapp_business_account", "entry": "x"},
            notification({"messages": "x"}), no_text, bad_from,
            notification({"messages": [{"from": WA, "type": "interactive", "id": "wamid.B4", "interactive": {}}]}),
        ]
        for body in bad:
            r = await post(client, body)
            assert (r.status_code, r.text) == (200, "ok")  # acknowledged: Meta must not resend it for days
        rows = await quarantined(sessionmaker)
        assert [r.channel for r in rows] == ["whatsapp"] * 8
        assert "invalid JSON" in rows[0].reason and "RecursionError" in rows[0].reason
        assert "invalid JSON" in rows[1].reason
        assert "not a whatsapp_business_account" in rows[2].reason
        assert "entry is not a list" in rows[3].reason
        assert "messages is not a list" in rows[4].reason
        assert "text.body is not a string" in rows[5].reason
        assert "from is not a phone number" in rows[6].reason
        assert "without a button or list reply" in rows[7].reason
        assert await inbound(sessionmaker) == []

        # A lone surrogate is text Python can hold but not store as UTF-8: kept, and the channel goes on.
        assert (await post(client, surrogate)).text == "ok"
        assert "\\ud800" in (await quarantined(sessionmaker))[-1].payload
        assert (await post(client, text_message(WA, "wamid.OK", "Hello"))).text == "ok"
        assert [m.external_message_id for m in await inbound(sessionmaker)][-1] == "wamid.OK"


async def test_an_outage_is_a_503_and_the_resend_is_stored_once(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    from sqlalchemy.exc import OperationalError

    async with running(wa_app(db_url, tmp_path, graph)) as (adapter, client):
        ingest = adapter.ctx.ingest
        real = ingest.ingest

        async def down(*_args: Any) -> Any:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))

        ingest.ingest = down  # type: ignore[method-assign]
        try:
            r = await post(client, text_message(WA, "wamid.IN1", "Hello"))
        finally:
            ingest.ingest = real  # type: ignore[method-assign]
        assert r.status_code == 503 and adapter.health.state == "error"
        assert (await post(client, text_message(WA, "wamid.IN1", "Hello"))).text == "ok"  # Meta's resend
        assert len(await inbound(sessionmaker)) == 1


async def test_agent_reply_uploads_files_as_documents_after_the_text(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    from core.users.models import Role
    from tests.conftest import make_user

    _, token = await make_user(sessionmaker, Role.agent, "wa-agent@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        assert (await post(client, text_message(WA, "wamid.IN1", "Hello"))).text == "ok"
        await wait_for(lambda: len(graph.sent) == 1)
        ticket_id = (await inbound(sessionmaker))[0].ticket_id
        info = (await client.post("/attachments", headers=auth,
                                  files={"file": ("счёт.pdf", b"%PDF-1.4 invoice", "application/pdf")})).json()
        r = await client.post(f"/tickets/{ticket_id}/reply", headers=auth,
                              json={"text": "Your invoice.", "attachments": [info]})
        assert r.status_code == 201, r.text
        await wait_for(lambda: len(graph.sent) == 3)
        text, document = graph.sent[1:]
        assert text["text"]["body"] == "wa-agent:\nYour invoice."
        assert document["type"] == "document" and document["document"]["filename"] == "счёт.pdf"
        assert graph.media[document["document"]["id"]] == ("счёт.pdf", b"%PDF-1.4 invoice", "application/pdf")


async def test_media_is_downloaded_with_the_token_and_failures_keep_the_message(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    jpeg = b"\xff\xd8\xff" + b"p" * 997
    graph.inbound_media = {"1001": (jpeg, "image/jpeg"), "1003": (b"%PDF-1.4 " + b"d" * 3000, "application/pdf")}
    async with running(wa_app(db_url, tmp_path, graph, max_download_bytes=2500,
                              media_hosts=["127.0.0.1"])) as (adapter, client):
        image = media_message(WA, "wamid.M1", "image", {"id": "1001", "mime_type": "image/jpeg",
                                                          "caption": "my router"})
        assert (await post(client, image)).text == "ok"
        [message] = await inbound(sessionmaker)
        assert message.text == "my router"
        [stored] = message.attachments
        assert stored["content_type"] == "image/jpeg" and stored["size"] == 1000
        assert stored["storage_key"].startswith("whatsapp/")
        assert await adapter.ctx.files.read(stored["storage_key"]) == jpeg
        # A redelivery after a restart is not downloaded again.
        adapter._recent.clear()
        assert (await post(client, image)).text == "ok"
        assert graph.downloads == ["1001"] and len(await inbound(sessionmaker)) == 1

        # Gone from Meta's servers (404), unknown to the Graph API, over the limit, on a foreign host: the message is
        # kept with the reason; the over-limit and foreign ones are never fetched.
        cases = {"wamid.M2": {"id": "gone-1", "mime_type": "image/jpeg"},
                 "wamid.M3": {"id": "99999", "mime_type": "application/pdf", "filename": "счёт.pdf"},
                 "wamid.M4": {"id": "1003", "mime_type": "application/pdf", "filename": "big.pdf"}}
        for message_id, media in cases.items():
            kind = "image" if media["mime_type"].startswith("image/") else "document"
            assert (await post(client, media_message(WA, message_id, kind, media))).text == "ok"
        graph.media_url_host = f"http://localhost:{graph.port}"
        assert (await post(client, media_message(WA, "wamid.M5", "image", {"id": "1001"}))).text == "ok"
        messages = await inbound(sessionmaker)
        assert [m.external_message_id for m in messages] == ["wamid.M1", "wamid.M2", "wamid.M3", "wamid.M4",
                                                             "wamid.M5"]
        reasons = [m.extra["rejected_attachments"][0]["reason"] for m in messages[1:]]
        assert reasons[0] == "the file could not be downloaded: HTTP 404"
        assert reasons[1].startswith("the file could not be downloaded: WhatsApp API HTTP 400: error 100")
        assert reasons[2] == "the file is 3009 bytes; the limit is 2500"
        assert reasons[3] == "the file is not on a WhatsApp media host"
        assert messages[2].extra["rejected_attachments"][0]["filename"] == "счёт.pdf"
        assert all(m.attachments == [] for m in messages[1:])
        assert graph.downloads == ["1001", "gone-1"]

        # A media message without its object is quarantined.
        hollow = media_message(WA, "wamid.M6", "image", {})
        hollow["entry"][0]["changes"][0]["value"]["messages"][0]["image"] = "x"
        assert (await post(client, hollow)).text == "ok"
        assert "a message of type image without its image object" in (await quarantined(sessionmaker))[-1].reason


@pytest.mark.parametrize("trusted", [True, False])
async def test_the_phone_joins_the_customer_known_by_the_same_verified_phone_when_trusted(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI,
    trusted: bool,
) -> None:
    from core.customers import service as customer_service
    from core.ingest.schemas import SenderInfo

    async with sessionmaker() as session, session.begin():
        # Known from Telegram by a contact the user shared of themselves (8 900 ... is +7 900 ...).
        known = await customer_service.resolve_identity(session, "telegram", SenderInfo(
            external_id="555", name="Kerry", phone="8 900 123-45-67", verified=True))
    async with running(wa_app(db_url, tmp_path, graph, trust_phone_number=trusted)) as (_adapter, client):
        assert (await post(client, text_message(WA, "wamid.IN1", "Hello"))).text == "ok"
    async with sessionmaker() as session:
        identity = (await session.scalars(select(ChannelIdentity).where(
            ChannelIdentity.channel == "whatsapp"))).one()
    assert identity.verified is trusted
    assert (identity.customer_id == known.customer_id) is trusted


async def test_the_console_says_when_the_24_hour_window_is_closed(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    import time

    from core.tickets.models import Ticket
    from core.users.models import Role
    from tests.conftest import make_user
    from tests.console.conftest import login

    await make_user(sessionmaker, Role.agent, "wa-window@test.example")
    late, recent = "79001110000", "79002220000"
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        assert (await post(client, text_message(late, "wamid.L1", "Hello",
                                                timestamp=str(int(time.time()) - 25 * 3600)))).text == "ok"
        assert (await post(client, text_message(recent, "wamid.R1", "Hello",
                                                timestamp=str(int(time.time()) - 23 * 3600)))).text == "ok"
        assert (await login(client, "wa-window@test.example")).status_code == 303
        pages = {}
        for message in await inbound(sessionmaker):
            async with sessionmaker() as session:
                ticket = await session.get(Ticket, message.ticket_id)
                assert ticket is not None
            pages[message.external_message_id] = (await client.get(f"/console/tickets/{ticket.number}")).text
        assert 'id="whatsapp-window-closed"' in pages["wamid.L1"]
        assert "More than 24 hours" in pages["wamid.L1"] or "больше 24 часов" in pages["wamid.L1"]
        assert 'id="whatsapp-window-closed"' not in pages["wamid.R1"]
