"""Web chat catches open sockets up from the database when live events may have been lost (issue 20)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db.base import utcnow
from core.events import RESYNC_TOPIC, discard_pending
from core.outbox.models import OutboxMessage, OutboxStatus
from core.tickets import service as ticket_service
from core.users import service as users
from core.users.models import Role
from tests.channels.webchat.conftest import Client, Server, start_server
from tests.conftest import make_user


async def reply_without_event(sessionmaker: async_sessionmaker[AsyncSession], ticket_number: str, text: str) -> int:
    """An agent's reply made on 'another instance' while Redis is down: its live event never arrives here, and
    that instance's outbox marked it sent (it has no socket of this visitor to push it to)."""
    async with sessionmaker() as session, session.begin():
        agent = await users.get_by_email(session, "agent@test.example")
        assert agent is not None
        ticket = await ticket_service.get(session, ticket_service.ticket_id_from_ref(ticket_number))
        message = await ticket_service.reply(session, ticket, agent, text)
        await session.flush()
        await session.execute(update(OutboxMessage).where(OutboxMessage.message_id == message.id)
                              .values(status=OutboxStatus.sent, sent_at=utcnow()))
        message_id = message.id
        discard_pending(session)
    return message_id


async def frames_for(client: Client, seconds: float) -> list[dict[str, object]]:
    """What arrives within a moment (used only to show that nothing more comes)."""
    start = len(client.frames)
    with contextlib.suppress(TimeoutError):
        await client.next("__none__", timeout=seconds)
    return client.frames[start:]


async def test_a_resync_pushes_missed_replies_in_order_once(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(sessionmaker, Role.agent, "agent@test.example", "general")
    client, ready, _ = await Client.connect(chat_server.ws_url, lang="en")
    ack = await client.say("c1", "hello")
    await client.next("message", where=lambda f: f["author"] == "bot")
    first = await reply_without_event(sessionmaker, ack["ticket"], "missed one")
    second = await reply_without_event(sessionmaker, ack["ticket"], "missed two")
    assert not [f for f in await frames_for(client, 0.3) if f["type"] == "message"]

    bus = chat_server.app.state.switchboard.bus
    bus.deliver_local(RESYNC_TOPIC, {"reason": "reconnected"})
    got = [await client.next("message"), await client.next("message")]
    assert [(f["id"], f["text"], f["author"]) for f in got] == [(first, "missed one", "agent"),
                                                                (second, "missed two", "agent")]
    sync = await client.next("sync")
    assert sync["cursor"] >= second

    # A second catch-up sends nothing again, and a reconnect from the sync cursor has nothing to fetch.
    bus.deliver_local(RESYNC_TOPIC, {"reason": "reconnected"})
    assert not [f for f in await frames_for(client, 0.3) if f["type"] == "message"]
    await client.close()
    again, _, history = await Client.connect(chat_server.ws_url, token=ready["session_token"],
                                             last_seen_id=sync["cursor"])
    assert history["messages"] == []
    assert history["cursor"] >= sync["cursor"]
    await again.close()


async def test_a_lost_event_is_caught_up_periodically_without_any_signal(
    db_url: str, db_engine: AsyncEngine, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Nobody knows this event was lost (its instance died before it could publish): the periodic pass finds it."""
    info = await start_server(db_url, tmp_path, catch_up_seconds=0.2)
    try:
        await make_user(sessionmaker, Role.agent, "agent@test.example", "general")
        client, _, _ = await Client.connect(info.ws_url, lang="en")
        ack = await client.say("c1", "hello")
        await client.next("message", where=lambda f: f["author"] == "bot")
        lost = await reply_without_event(sessionmaker, ack["ticket"], "lost with its instance")
        got = await client.next("message", timeout=20)
        assert (got["id"], got["text"]) == (lost, "lost with its instance")
        assert (await client.next("sync"))["cursor"] >= lost
        await client.close()
    finally:
        await info.stop()
