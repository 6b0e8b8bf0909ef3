"""The web-chat protocol over real WebSockets against the whole app on uvicorn."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.webchat import tokens
from core.customers.models import ChannelIdentity
from core.outbox.models import OutboxMessage, OutboxStatus
from core.tickets.models import Direction, Message
from tests.channels.webchat.conftest import SITE_SECRET, Client, Server, start_server
from tests.support.waiting import wait_for


async def customer_messages(sm: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sm() as session:
        return list((await session.scalars(select(Message).where(
            Message.channel == "webchat", Message.direction == Direction.inbound).order_by(Message.id))).all())


async def outbox_sent(sm: async_sessionmaker[AsyncSession], message_id: int) -> bool:
    async with sm() as session:
        status = await session.scalar(select(OutboxMessage.status).where(OutboxMessage.message_id == message_id))
    return status == OutboxStatus.sent


async def test_anonymous_session_answer_and_history_after_reload(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, ready, history = await Client.connect(chat_server.ws_url, lang="en")
    assert ready["visitor_id"].startswith("v_") and ready["session_token"]
    assert history == {"type": "history", "messages": [], "complete": True}
    ack = await client.say("c1", "hello")
    assert ack["duplicate"] is False and ack["ticket"].startswith("T-")
    answer = await client.next("message", where=lambda f: f["author"] == "bot")
    assert answer["text"] == "Hello! How can I help?"
    assert answer["quick_replies"] == [{"title": "Talk to an operator", "payload": "/human_handoff"}]
    # The outbox delivers the same answer again through the channel's `send`, which writes to the open socket
    # before the row is marked sent: once it is, a second push would be on the wire ahead of the pong.
    await wait_for(lambda: outbox_sent(sessionmaker, answer["id"]), "the outbox's delivery of the answer")
    await client.send({"type": "ping"})
    await client.next("pong")
    assert [f["id"] for f in client.frames if f["type"] == "message"] == [answer["id"]]
    await client.close()

    # A page reload: the stored token brings back the same visitor and the whole conversation.
    again, ready2, history2 = await Client.connect(chat_server.ws_url, token=ready["session_token"])
    assert ready2["visitor_id"] == ready["visitor_id"] and "session_token" not in ready2
    assert [(m["author"], m["text"]) for m in history2["messages"]] == [
        ("customer", "hello"), ("bot", "Hello! How can I help?")]
    assert history2["messages"][0]["client_id"] == "c1"
    await again.close()

    # A forged token never opens someone else's conversation: it starts a new session.
    forged = ready["session_token"][:-2] + ("AA" if not ready["session_token"].endswith("AA") else "BB")
    other, ready3, history3 = await Client.connect(chat_server.ws_url, token=forged)
    assert ready3["visitor_id"] != ready["visitor_id"] and history3["messages"] == []
    await other.close()


async def test_signed_identity_follows_the_user_and_a_wrong_hash_is_refused(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    good = tokens.identity_hash(SITE_SECRET, "user-42")
    laptop, ready, _ = await Client.connect(chat_server.ws_url, identifier="user-42", identifier_hash=good,
                                            email="ivan@example.com", name="Ivan")
    assert ready["visitor_id"] == "u:user-42" and "session_token" not in ready
    await laptop.say("l1", "my internet is down")
    await laptop.next("message", where=lambda f: f["author"] == "bot")
    phone, _, history = await Client.connect(chat_server.ws_url, identifier="user-42", identifier_hash=good)
    assert history["messages"][0]["text"] == "my internet is down"
    # A message from the phone shows up live on the laptop too.
    ack = await phone.say("p1", "any news?")
    echoed = await laptop.next("message", where=lambda f: f["id"] == ack["id"])
    assert echoed["author"] == "customer" and echoed["client_id"] == "p1"
    await laptop.close()
    await phone.close()
    async with sessionmaker() as session:
        identity = (await session.scalars(select(ChannelIdentity).where(
            ChannelIdentity.external_id == "u:user-42"))).one()
    assert identity.verified is True  # the site vouches for its user's email

    ws = await websockets.connect(chat_server.ws_url)
    await ws.send('{"type": "auth", "identifier": "user-42", "identifier_hash": "' + "0" * 64 + '"}')
    error = await ws.recv()
    assert '"code": "identity_invalid"' in str(error) and "HMAC-SHA256" in str(error)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_reconnect_resends_unacked_without_loss_or_duplicates(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, ready, _ = await Client.connect(chat_server.ws_url)
    first = await client.say("m1", "my internet is down")
    # The network drops right after m2 leaves: the client never sees its ack.
    await client.send({"type": "message", "client_id": "m2", "text": "and the TV too"})
    client.ws.transport.abort()
    await asyncio.sleep(0.2)

    again, _, history = await Client.connect(chat_server.ws_url, token=ready["session_token"],
                                             last_seen_id=first["id"])
    assert all(m["id"] > first["id"] for m in history["messages"])
    ack2 = await again.say("m2", "and the TV too")  # resent with the same client id
    ack3 = await again.say("m3", "please call me")
    assert ack3["id"] > ack2["id"] > first["id"]
    await again.send({"type": "history", "after": 0})
    full = await again.next("history")
    ids = [m["id"] for m in full["messages"]]
    assert len(ids) == len(set(ids))
    texts = [m.text for m in await customer_messages(sessionmaker)]
    assert texts == ["my internet is down", "and the TV too", "please call me"]
    await again.close()


async def test_live_agent_reply_typing_and_quick_reply(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession], agent: tuple[Any, dict[str, str]]
) -> None:
    _, auth = agent
    client, ready, _ = await Client.connect(chat_server.ws_url, lang="en")
    assert ready["online"] is True and ready["notice"] is None  # an active agent exists
    await client.say("q0", "hello")
    await client.next("message", where=lambda f: f["author"] == "bot")
    await client.send({"type": "quick_reply", "client_id": "q1", "payload": "/human_handoff",
                       "title": "Talk to an operator"})
    ack = await client.next("ack")
    handoff = await client.next("message", where=lambda f: f["author"] == "bot")
    assert handoff["text"].startswith("Connecting you with an operator")
    async with httpx.AsyncClient(base_url=chat_server.url) as http:
        r = await http.post("/channels/webchat/typing", headers=auth, json={"ticket": ack["ticket"]})
        assert r.status_code == 204, r.text
        typing = await client.next("typing")
        assert typing["active"] is True
        r = await http.post(f"/tickets/{ack['ticket']}/reply", headers=auth, json={"text": "Hi, this is Olga."})
        assert r.status_code == 201, r.text
        reply = await client.next("message", where=lambda f: f["author"] == "agent")
        assert reply["text"] == "Hi, this is Olga." and reply["id"] == r.json()["id"]
    messages = await customer_messages(sessionmaker)
    assert messages[-1].extra["quick_reply"] == "/human_handoff"
    await client.close()


async def test_bad_frames_get_clear_errors_and_the_socket_survives(chat_server: Server) -> None:
    client, _, _ = await Client.connect(chat_server.ws_url)
    await client.send("this is not json")
    assert (await client.next("error"))["code"] == "bad_frame"
    await client.send({"type": "message", "client_id": "bad id!", "text": "x"})
    assert (await client.next("error"))["code"] == "bad_frame"
    await client.send({"type": "message", "client_id": "big", "text": "x" * 5000})
    assert (await client.next("error"))["code"] == "too_large"
    await client.send({"type": "message", "client_id": "long", "text": "y" * 1500})
    error = await client.next("error")
    assert error["code"] == "too_large" and error["client_id"] == "long"
    await client.ws.send(b"\x00\x01")
    assert (await client.next("error"))["code"] == "bad_frame"
    await client.send({"type": "ping"})
    assert (await client.next("pong"))["type"] == "pong"
    # The rate limit: a burst of 5, then a clear error with the time to wait.
    for i in range(8):  # sent at once, faster than any refill
        await client.send({"type": "message", "client_id": f"r{i}", "text": f"complaint number {i}"})
    limited = await client.next("error")
    assert limited["code"] == "rate_limited" and limited["client_id"] in {f"r{i}" for i in range(5, 8)}
    assert limited["retry_after"] > 0
    await client.close()

    ws = await websockets.connect(chat_server.ws_url)
    await ws.send('{"type": "message", "client_id": "x", "text": "no auth"}')
    assert '"auth_required"' in str(await ws.recv())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_offline_notice_outside_office_hours(db_url: str, db_engine: Any, tmp_path: Any) -> None:
    info = await start_server(db_url, tmp_path, office_days=[], office_hours="09:00-18:00")
    try:
        client, ready, _ = await Client.connect(info.ws_url, lang="ru")
        assert ready["online"] is False
        assert ready["notice"].startswith("Сейчас операторы не в сети (часы работы: 09:00-18:00)")
        await client.close()
        client, ready, _ = await Client.connect(info.ws_url, lang="en")
        assert ready["notice"].startswith("Our operators are offline now")
        await client.close()
    finally:
        await info.stop()


async def test_agent_attachments_reach_the_widget_as_name_and_size_only(
    chat_server: Server, agent: tuple[Any, dict[str, str]]
) -> None:
    _, auth = agent
    client, ready, _ = await Client.connect(chat_server.ws_url, lang="en")
    ack = await client.say("a0", "hello")
    await client.next("message", where=lambda f: f["author"] == "bot")
    async with httpx.AsyncClient(base_url=chat_server.url) as http:
        info = (await http.post("/attachments", headers=auth,
                                files={"file": ("<b>plan<i>.pdf", b"%PDF plan", "application/pdf")})).json()
        r = await http.post(f"/tickets/{ack['ticket']}/reply", headers=auth,
                            json={"text": "Here is the plan.", "attachments": [info]})
        assert r.status_code == 201, r.text
        live = await client.next("message", where=lambda f: f["author"] == "agent")
        # No storage key and no agent-only URL goes to the visitor.
        assert live["attachments"] == [{"filename": "_b_plan_i_.pdf", "size": 9}]
    again, _, history = await Client.connect(chat_server.ws_url, token=ready["session_token"])
    stored = [m for m in history["messages"] if m["author"] == "agent"]
    assert stored[0]["attachments"] == [{"filename": "_b_plan_i_.pdf", "size": 9}]
    await client.close()
    await again.close()


async def test_unreadable_and_unstorable_frames_are_refused_with_a_reason(chat_server: Server) -> None:
    """Nesting deeper than json can read, lone surrogates and NUL: a bad_frame error, and the socket goes on."""
    client, _, _ = await Client.connect(chat_server.ws_url)
    await client.send('{"type": "message", "client_id": "deep", "text": "x", "junk": ' + "[" * 1900 + "]" * 1900 + "}")
    assert (await client.next("error"))["code"] == "bad_frame"
    for i, text in enumerate(["broken \ud800 text", "nul \x00 inside"]):
        await client.send({"type": "message", "client_id": f"s{i}", "text": text})
        error = await client.next("error")
        assert error["code"] in ("bad_frame", "too_large"), error
    await client.send({"type": "message", "client_id": "s2", "text": "fine", "extra": {"n": "\udfff"}})
    error = await client.next("error")
    assert error["code"] == "bad_frame" and "surrogate" in error["message"]
    assert (await client.say("ok", "hello"))["duplicate"] is False
    await client.close()
    # A name that cannot be stored is refused at sign-in, with the reason.
    client, ready, _ = await Client.connect(chat_server.ws_url, name="\ud800")
    assert ready["type"] == "error" and ready["code"] == "bad_frame" and "surrogate" in ready["message"]


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + "ая", lambda t: t.replace(".", ".¹", 1) if "." in t else "¹" + t[1:],
    lambda t: "v_¹" + t[3:], lambda t: t + "\udc80",
])
def test_non_ascii_tokens_and_hashes_are_refused_not_errors(mangle: Any) -> None:
    """hmac.compare_digest raises TypeError on str with non-ASCII characters, and isdigit() takes "¹"."""
    token = tokens.issue_session_token(b"secret", "v_abc", now=1000.0)
    assert tokens.verify_session_token(b"secret", token, ttl_seconds=60, now=1001.0) == "v_abc"
    assert tokens.verify_session_token(b"secret", mangle(token), ttl_seconds=60, now=1001.0) is None
    good = tokens.identity_hash(SITE_SECRET, "user-42")
    assert tokens.verify_identity(SITE_SECRET, "user-42", good)
    assert not tokens.verify_identity(SITE_SECRET, "user-42", mangle(good))
    assert not tokens.verify_identity(SITE_SECRET, mangle("user-42"), good)


async def test_the_agents_display_name_reaches_the_widget_on_typing_replies_and_history(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from core.users import service as users
    from core.users.models import Role
    from tests.conftest import make_user
    from tests.console.conftest import csrf_of, login

    user, token = await make_user(sessionmaker, Role.agent, "anna.petrova@test.example")
    async with sessionmaker() as session, session.begin():
        (await users.get(session, user.id)).display_name = "Анна"
    client, ready, _ = await Client.connect(chat_server.ws_url, lang="ru")
    ack = await client.say("q0", "hello")
    await client.next("message", where=lambda f: f["author"] == "bot")
    async with httpx.AsyncClient(base_url=chat_server.url) as console:
        assert (await login(console, "anna.petrova@test.example")).status_code == 303
        csrf = csrf_of((await console.get("/console/inbox")).text)
        url = f"/console/tickets/{ack['ticket']}/presence"
        r = await console.post(url, data={"csrf_token": csrf, "state": "typing", "what": "note"})
        assert r.status_code == 204
        r = await console.post(url, data={"csrf_token": csrf, "state": "typing", "what": "reply"})
        assert r.status_code == 204
        typing = await client.next("typing")
        assert typing == {"type": "typing", "active": True, "author": "Анна"}
        # The note before it showed the visitor nothing.
        assert [f for f in client.frames if f["type"] == "typing"] == [typing]
        r = await console.post(f"/tickets/{ack['ticket']}/reply", headers={"Authorization": f"Bearer {token}"},
                               json={"text": "Здравствуйте!"})
        assert r.status_code == 201, r.text
    reply = await client.next("message", where=lambda f: f["author"] == "agent")
    assert (reply["text"], reply["author_name"]) == ("Здравствуйте!", "Анна")
    await client.close()
    # After a reload the history shows the name too (kept with the delivery, not looked up again).
    again, _, history = await Client.connect(chat_server.ws_url, lang="ru", token=ready["session_token"])
    agent_messages = [m for m in history["messages"] if m["author"] == "agent"]
    assert [(m["text"], m.get("author_name")) for m in agent_messages] == [("Здравствуйте!", "Анна")]
    bot_messages = [m for m in history["messages"] if m["author"] == "bot"]
    assert bot_messages and all("author_name" not in m for m in bot_messages)
    await again.close()
