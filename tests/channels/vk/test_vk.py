"""The VK channel end to end: the Callback API route in, httpx out to a local VK API stand-in over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from channels.vk.adapter import VkChannel, button_command, keyboard, random_id
from channels.vk.settings import VkChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from core.consent.models import ConsentChange
from core.customers.models import ChannelIdentity, Customer
from core.outbox.models import OutboxMessage
from core.outbox.schemas import QuickReply
from core.quarantine.models import QuarantinedPayload
from core.tickets.models import Direction, Message
from tests.channels.vk.vkapi import CONFIRMATION, GROUP_ID, SECRET, TOKEN, FakeVkAPI, running_vk_api
from tests.conftest import REST_KEY, keyword_engine, make_settings, responses
from tests.support.waiting import wait_for

PEER = 7001


@pytest.fixture
async def vk_api() -> AsyncIterator[FakeVkAPI]:
    async with running_vk_api() as api:
        yield api


def vk_app(db_url: str, data_dir: Path, api: FakeVkAPI, **overrides: Any) -> FastAPI:
    vk = VkChannelSettings(
        enabled=True, access_token=SecretStr(TOKEN), group_id=GROUP_ID, confirmation_code=CONFIRMATION,
        secret=SecretStr(SECRET), api_base_url=f"{api.base_url}/method", request_timeout_seconds=5,
        max_download_bytes=2500, media_hosts=["127.0.0.1"], retry_backoff_max_seconds=0.5, **overrides,
    )
    settings = make_settings(db_url, data_dir=data_dir, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), telegram=TelegramChannelSettings(),
        webchat=WebchatChannelSettings(enabled=False), vk=vk))
    return create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[tuple[VkChannel, httpx.AsyncClient]]:
    async with app.router.lifespan_context(app):
        adapter = app.state.switchboard.channels.get("vk")
        assert isinstance(adapter, VkChannel)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await wait_for(adapter.ready.is_set, "the channel checked its token")
            yield adapter, client


def post(client: httpx.AsyncClient, body: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/channels/vk/callback", content=content, headers={"Content-Type": "application/json"})


async def inbound(sm: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sm() as session:
        return list((await session.scalars(
            select(Message).where(Message.channel == "vk", Message.direction == Direction.inbound)
            .order_by(Message.id))).all())


async def quarantined(sm: async_sessionmaker[AsyncSession]) -> list[QuarantinedPayload]:
    async with sm() as session:
        return list((await session.scalars(select(QuarantinedPayload).order_by(QuarantinedPayload.id))).all())


async def outbox_rows(sm: async_sessionmaker[AsyncSession], recipient: str) -> list[OutboxMessage]:
    async with sm() as session:
        return list((await session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == recipient)
                                           .order_by(OutboxMessage.id))).all())


# -- units -----------------------------------------------------------------------------------------------


def test_random_id_is_stable_per_part_and_a_positive_int32() -> None:
    assert random_id(42, 0) == random_id(42, 0)
    ids = {random_id(outbox, part) for outbox in range(1, 200) for part in range(3)}
    assert len(ids) == 597
    assert all(0 < i < 2**31 for i in ids)


def test_keyboard_puts_csat_in_one_row_and_button_commands_round_trip() -> None:
    replies = [QuickReply(title="Talk to an operator, a very long title indeed", payload="/human_handoff"),
               *[QuickReply(title=str(n), payload=f"/csat {n}") for n in range(1, 6)]]
    markup = keyboard(replies)
    assert markup is not None
    data = json.loads(markup)
    assert data["inline"] is True
    rows = data["buttons"]
    assert [[button_command(b["action"]["payload"]) for b in row] for row in rows] == [
        [f"/csat {n}" for n in range(1, 6)], ["/human_handoff"]]
    assert all(len(b["action"]["label"]) <= 40 for row in rows for b in row)
    assert keyboard([]) is None
    huge = keyboard([QuickReply(title="x", payload="/p " + "я" * 400)])
    assert huge is not None and len(json.loads(huge)["buttons"][0][0]["action"]["payload"]) <= 255
    for hostile in (None, "", "not json", "[1]", '{"command": 5}', '{"command": "  "}', "[" * 5000):
        assert button_command(hostile) is None


def test_settings_need_everything_once_enabled() -> None:
    with pytest.raises(ValidationError, match="access_token, group_id, confirmation_code, secret"):
        VkChannelSettings(enabled=True)
    assert VkChannelSettings().enabled is False


# -- Callback API -----------------------------------------------------------------------------------------


async def test_confirmation_secret_and_group_are_checked(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    async with running(vk_app(db_url, tmp_path, vk_api)) as (adapter, client):
        r = await post(client, vk_api.fixture("confirmation"))
        assert (r.status_code, r.text) == (200, CONFIRMATION)
        assert r.headers["content-type"].startswith("text/plain")
        r = await post(client, {"type": "confirmation", "group_id": 1})
        assert r.status_code == 403 and "another community" in r.text

        event = vk_api.fixture("message_new")
        for secret in (None, "wrong", 123):
            forged = {**event, "secret": secret} if secret is not None else {
                k: v for k, v in event.items() if k != "secret"}
            r = await post(client, forged)
            assert r.status_code == 403 and "secret" in r.text
        # Not JSON and no valid secret inside: refused, nothing kept (strangers cannot fill the quarantine).
        assert (await post(client, b"{not json")).status_code == 403
        assert (await post(client, b'["list"]')).status_code == 403
        assert await inbound(sessionmaker) == [] and await quarantined(sessionmaker) == []
        health = (await client.get("/health")).json()["channels"]["vk"]
        assert health["state"] == "connected" and health["community"] == "test_operator"
        assert health["group_id"] == GROUP_ID
        assert "access_token" not in json.dumps(health) and TOKEN not in json.dumps(health)
        assert adapter.settings.group_id == GROUP_ID


async def test_text_answer_with_button_redelivery_and_handoff(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    async with running(vk_app(db_url, tmp_path, vk_api)) as (adapter, client):
        event = vk_api.fixture("message_new")
        r = await post(client, event)
        assert (r.status_code, r.text) == (200, "ok")
        await wait_for(lambda: len(vk_api.sent_texts(PEER)) == 1)
        answer = vk_api.sent(PEER)[0]
        assert answer["message"] == "Hello! How can I help?"
        markup = json.loads(answer["keyboard"])
        assert markup["inline"] is True
        [[button]] = markup["buttons"]
        assert button["action"]["label"] == "Talk to an operator"
        assert json.loads(button["action"]["payload"]) == {"command": "/human_handoff"}
        # The token travels in the body, never in a URL.
        assert answer["access_token"] == TOKEN and answer["v"] == "5.199"

        # VK resends an event it got no "ok" for: the same event id (the fast path), then a restart's resend.
        assert (await post(client, event)).text == "ok"
        adapter._recent.clear()
        assert (await post(client, event)).text == "ok"
        assert len(await inbound(sessionmaker)) == 1

        # The button pressed: a message whose payload carries the command.
        press = vk_api.fixture("message_new", id=13, text="Talk to an operator",
                               payload='{"command":"/human_handoff"}')
        press["event_id"] = "press-1"
        assert (await post(client, press)).text == "ok"
        await wait_for(lambda: len(vk_api.sent_texts(PEER)) == 2)
        assert vk_api.sent_texts(PEER)[1].startswith("Connecting you with an operator")
        messages = await inbound(sessionmaker)
        assert [m.external_message_id for m in messages] == [f"{PEER}:10", f"{PEER}:13"]
        assert messages[1].extra["quick_reply"] == "/human_handoff"
        assert messages[1].intent == "human_handoff"
        assert messages[0].ticket_id == messages[1].ticket_id
        assert messages[0].extra["vk"]["event_id"] == event["event_id"]

        # The community's own messages echo back as message_new from a negative id: not appeals.
        echo = vk_api.fixture("message_new", id=14, from_id=-GROUP_ID, text="internet problem")
        echo["event_id"] = "echo-1"
        assert (await post(client, echo)).text == "ok"
        assert len(await inbound(sessionmaker)) == 2


async def test_photo_and_documents_edits_and_unsupported(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    vk_api.files = {"x.jpg": b"\xff\xd8\xff" + b"p" * 2045, "doc7001_612345": b"%PDF-1.4 " + b"d" * 991}
    async with running(vk_app(db_url, tmp_path, vk_api)) as (_adapter, client):
        assert (await post(client, vk_api.fixture("message_new_sticker"))).text == "ok"
        assert vk_api.sent_texts(PEER)[-1].startswith("Извините, такие сообщения я пока не понимаю")
        assert await inbound(sessionmaker) == []

        media = vk_api.fixture("message_new_media")
        media["object"]["message"]["attachments"][1]["doc"]["size"] = 1000
        assert (await post(client, media)).text == "ok"
        [message] = await inbound(sessionmaker)
        assert message.text == "my router lights"
        assert "rejected_attachments" not in message.extra, message.extra
        photo, doc = message.attachments
        assert photo["content_type"] == "image/jpeg" and photo["size"] == 2048  # the largest size, 604x453
        assert (tmp_path / "attachments" / photo["storage_key"]).read_bytes() == vk_api.files["x.jpg"]
        assert doc["filename"] == "contract scan.pdf" and doc["content_type"] == "application/pdf"
        assert (tmp_path / "attachments" / doc["storage_key"]).read_bytes() == vk_api.files["doc7001_612345"]

        # A redelivery downloads nothing again.
        media["event_id"] = "another-event-id"
        assert (await post(client, media)).text == "ok"
        assert len(await inbound(sessionmaker)) == 1

        # An edit is a new message with its own id; the original stays as it was.
        assert (await post(client, vk_api.fixture("message_edit"))).text == "ok"
        ids = [m.external_message_id for m in await inbound(sessionmaker)]
        assert ids[-1] == f"edit:{PEER}:10:1735725660"
        assert (await inbound(sessionmaker))[-1].extra["edited"] is True


async def test_media_download_failures_keep_the_message_with_the_reason(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    """A file gone (404), over the limit (declared or real), or on a host that is not VK's: the message is kept,
    the file listed with the reason; a hostile host is never fetched."""
    vk_api.files = {"x.jpg": b"\xff\xd8\xff" + b"p" * 5000}  # over the 2,500-byte limit, size undeclared
    async with running(vk_app(db_url, tmp_path, vk_api)) as (_adapter, client):
        event = vk_api.fixture("message_new_media")  # the document is not served: 404
        event["object"]["message"]["attachments"][1]["doc"]["size"] = 100
        assert (await post(client, event)).text == "ok"
        [message] = await inbound(sessionmaker)
        assert message.attachments == []
        photo, doc = message.extra["rejected_attachments"]
        assert photo["reason"] == "the file is 2501 bytes; the limit is 2500"  # cut off, not read whole
        assert doc["reason"] == "the file could not be downloaded: HTTP 404"

        hostile = vk_api.fixture("message_new_media", id=20)
        hostile["event_id"] = "hostile-1"
        attachments = hostile["object"]["message"]["attachments"]
        # The stand-in's own file under a name that is not a VK media host, and a local file.
        vk_api.files["small.jpg"] = b"\xff\xd8\xff small"
        attachments[0]["photo"]["sizes"] = [{"type": "x", "width": 1, "height": 1,
                                             "url": f"http://localhost:{vk_api.port}/files/small.jpg"}]
        attachments[1]["doc"].update(url="file:///etc/passwd", size=10)
        before = list(vk_api.downloads)
        assert (await post(client, hostile)).text == "ok"
        message = (await inbound(sessionmaker))[-1]
        assert [r["reason"] for r in message.extra["rejected_attachments"]] == [
            "the file is not on a VK media host"] * 2
        assert vk_api.downloads == before  # never fetched

        big = vk_api.fixture("message_new_media", id=21)
        big["event_id"] = "big-1"
        big["object"]["message"]["attachments"] = big["object"]["message"]["attachments"][1:]
        assert (await post(client, big)).text == "ok"  # declared 3,000 bytes: refused without a download
        assert (await inbound(sessionmaker))[-1].extra["rejected_attachments"][0]["reason"] == \
            "the file is 3000 bytes; the limit is 2500"


def deep_event(depth: int = 5000) -> bytes:
    return (f'{{"type": "message_new", "group_id": {GROUP_ID}, "secret": "{SECRET}", "object": '
            + "[" * depth + "]" * depth + "}").encode()


async def test_malformed_and_hostile_events_are_quarantined_and_acknowledged(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    async with running(vk_app(db_url, tmp_path, vk_api)) as (_adapter, client):
        bad: list[Any] = [deep_event(), f'{{"secret": "{SECRET}", "type": "message_new", '.encode()]
        no_peer = vk_api.fixture("message_new", id=30)
        del no_peer["object"]["message"]["peer_id"]
        string_text = vk_api.fixture("message_new", id=31, text=["not", "a", "string"])
        surrogate = vk_api.fixture("message_new", id=32, text="broken \ud800 text")
        bad_photo = vk_api.fixture("message_new_media", id=33)
        bad_photo["object"]["message"]["attachments"][0]["photo"] = {"sizes": "none"}
        no_object = {"type": "message_new", "group_id": GROUP_ID, "secret": SECRET, "object": None}
        bad_consent = {"type": "message_deny", "group_id": GROUP_ID, "secret": SECRET, "object": {"user_id": "x"}}
        for index, event in enumerate([no_peer, string_text, surrogate, bad_photo, no_object, bad_consent]):
            event["event_id"] = f"bad-{index}"
            bad.append(event)
        for body in bad:
            r = await post(client, body)
            assert (r.status_code, r.text) == (200, "ok")  # acknowledged: VK must not resend it forever
        rows = await quarantined(sessionmaker)
        assert [r.channel for r in rows] == ["vk"] * 8
        assert "invalid JSON" in rows[0].reason and "RecursionError" in rows[0].reason
        assert "invalid JSON" in rows[1].reason
        assert "peer_id is not an integer" in rows[2].reason
        assert "text is not a string" in rows[3].reason
        assert "\\ud800" in rows[4].payload
        assert "a photo without sizes" in rows[5].reason
        assert "no object" in rows[6].reason
        assert "user_id is not an integer" in rows[7].reason
        assert await inbound(sessionmaker) == []

        # An unknown event type is acknowledged and ignored; the channel goes on.
        assert (await post(client, {"type": "wall_post_new", "group_id": GROUP_ID, "secret": SECRET,
                                    "object": {}})).text == "ok"
        assert (await post(client, vk_api.fixture("message_new"))).text == "ok"
        assert len(await inbound(sessionmaker)) == 1


async def test_an_outage_is_a_503_and_the_resend_is_stored_once(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    from sqlalchemy.exc import OperationalError

    async with running(vk_app(db_url, tmp_path, vk_api)) as (adapter, client):
        ingest = adapter.ctx.ingest
        real = ingest.ingest

        async def down(*_args: Any) -> Any:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))

        ingest.ingest = down  # type: ignore[method-assign]
        try:
            r = await post(client, vk_api.fixture("message_new"))
        finally:
            ingest.ingest = real  # type: ignore[method-assign]
        assert r.status_code == 503
        assert adapter.health.state == "error"
        assert (await post(client, vk_api.fixture("message_new"))).text == "ok"  # VK's resend
        assert len(await inbound(sessionmaker)) == 1


async def test_message_deny_and_allow_are_consent_events(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    async with running(vk_app(db_url, tmp_path, vk_api)) as (_adapter, client):
        assert (await post(client, vk_api.fixture("message_deny"))).text == "ok"
        assert (await post(client, vk_api.fixture("message_deny") | {"event_id": "again"})).text == "ok"

        async def state() -> tuple[bool, list[tuple[bool, str]]]:
            async with sessionmaker() as session:
                identity = (await session.scalars(select(ChannelIdentity).where(
                    ChannelIdentity.channel == "vk", ChannelIdentity.external_id == str(PEER)))).one()
                customer = await session.get(Customer, identity.customer_id)
                assert customer is not None
                log = (await session.scalars(select(ConsentChange).where(
                    ConsentChange.customer_id == customer.id).order_by(ConsentChange.id))).all()
                return customer.consent_notices, [(c.granted, c.source) for c in log]

        assert await state() == (False, [(False, "vk")])  # logged once: the second deny changed nothing
        assert (await post(client, vk_api.fixture("message_allow"))).text == "ok"
        assert await state() == (True, [(False, "vk"), (True, "vk")])

        # A withdrawal made elsewhere (the console, the API) is not overridden by VK's allow.
        async with sessionmaker() as session, session.begin():
            identity = (await session.scalars(select(ChannelIdentity).where(
                ChannelIdentity.channel == "vk"))).one()
            customer = await session.get(Customer, identity.customer_id)
            assert customer is not None
            customer.consent_notices = False
            session.add(ConsentChange(customer_id=customer.id, kind="notices", granted=False, source="console"))
        assert (await post(client, vk_api.fixture("message_allow") | {"event_id": "allow-2"})).text == "ok"
        consent, log = await state()
        assert consent is False and log[-1] == (False, "console")


# -- outbound ---------------------------------------------------------------------------------------------


async def test_rate_limits_are_retried_with_the_same_random_id_and_refusals_are_final(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    async with running(vk_app(db_url, tmp_path, vk_api)) as (_adapter, client):
        vk_api.rate_limit_next = 2
        assert (await post(client, vk_api.fixture("message_new"))).text == "ok"
        await wait_for(lambda: len(vk_api.sent_texts(PEER)) == 1, timeout=30)
        attempts = vk_api.called("messages.send")
        assert len(attempts) == 3  # two "too many requests", then sent
        assert len({a["random_id"] for a in attempts}) == 1  # one id: VK itself drops a repeat

        async def sent() -> OutboxMessage | None:
            rows = await outbox_rows(sessionmaker, str(PEER))
            return rows[0] if rows and rows[0].status.value == "sent" else None

        row = await wait_for(sent, "the delivery is recorded")
        assert row.attempts == 3
        assert row.provider_message_id is not None

        vk_api.blocked.add(6002)
        blocked = vk_api.fixture("message_new", peer_id=6002, from_id=6002, id=50)
        blocked["event_id"] = "blocked-1"
        assert (await post(client, blocked)).text == "ok"

        async def failed() -> OutboxMessage | None:
            rows = await outbox_rows(sessionmaker, "6002")
            return rows[0] if rows and rows[0].status.value == "failed" else None

        row = await wait_for(failed, "the refused message fails for good", timeout=30)
        assert row.attempts == 1  # permanent: not retried
        assert "901" in (row.last_error or "") and "rejected" in (row.last_error or "")


async def test_agent_reply_uploads_files_as_documents_after_the_text(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    from core.users.models import Role
    from tests.conftest import make_user

    _, token = await make_user(sessionmaker, Role.agent, "vk-agent@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    async with running(vk_app(db_url, tmp_path, vk_api)) as (_adapter, client):
        assert (await post(client, vk_api.fixture("message_new"))).text == "ok"
        await wait_for(lambda: len(vk_api.sent_texts(PEER)) == 1)
        ticket_id = (await inbound(sessionmaker))[0].ticket_id
        files = [("счёт.pdf", b"%PDF-1.4 invoice", "application/pdf")]
        infos = [(await client.post("/attachments", headers=auth, files={"file": f})).json() for f in files]
        r = await client.post(f"/tickets/{ticket_id}/reply", headers=auth,
                              json={"text": "Your invoice.", "attachments": infos})
        assert r.status_code == 201, r.text
        await wait_for(lambda: len(vk_api.sent(PEER)) == 3)
        text, document = vk_api.sent(PEER)[1:]
        assert text["message"] == "vk-agent:\nYour invoice."
        assert document["attachment"].startswith(f"doc-{GROUP_ID}_") and "message" not in document
        assert list(vk_api.uploads.values()) == [("счёт.pdf", b"%PDF-1.4 invoice")]
        assert text["random_id"] != document["random_id"]


async def test_csat_presses_and_typing(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, vk_api: FakeVkAPI
) -> None:
    """A CSAT button press carries its score (ASCII digits only); an agent typing shows in the customer's dialog."""
    from channels.base import PermanentSendError

    async with running(vk_app(db_url, tmp_path, vk_api)) as (adapter, client):
        for message_id, command in ((40, "/csat ¹"), (41, "/csat 4")):
            press = vk_api.fixture("message_new", id=message_id, text=command[-1],
                                   payload=json.dumps({"command": command}))
            press["event_id"] = f"csat-{message_id}"
            assert (await post(client, press)).text == "ok"
        assert [m.extra.get("csat") for m in await inbound(sessionmaker)] == [None, 4]

        await adapter.send_typing(str(PEER))
        [activity] = vk_api.called("messages.setActivity")
        assert (activity["peer_id"], activity["type"], activity["group_id"]) == (str(PEER), "typing", str(GROUP_ID))
        with pytest.raises(PermanentSendError):
            await adapter.send_typing("not-a-peer")
