"""A web-chat visitor's page and time zone: validated at sign-in, kept for a new visitor, shown in the console."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.webchat import tokens
from core.customers.models import ChannelIdentity, Customer
from core.users import service as users
from core.users.models import Role
from tests.channels.webchat.conftest import SITE_SECRET, Client, Server, start_server
from tests.conftest import make_user
from tests.console.conftest import login

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
async def server(db_url: str, db_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Server]:
    # Frames up to 32 kB, so a 10 kB page reaches the page check instead of the frame limit.
    server = await start_server(db_url, tmp_path, max_frame_bytes=32_768)
    yield server
    await server.stop()


async def origin_and_zone(sm: async_sessionmaker[AsyncSession], visitor_id: str) -> tuple[str | None, str | None]:
    async with sm() as session:
        row = (await session.execute(
            select(ChannelIdentity.origin, Customer.time_zone).join(Customer)
            .where(ChannelIdentity.channel == "webchat", ChannelIdentity.external_id == visitor_id))).one()
    return row.origin, row.time_zone


async def set_language(sm: async_sessionmaker[AsyncSession], user_id: int, language: str) -> None:
    async with sm() as session, session.begin():
        (await users.get(session, user_id)).language = language


async def test_a_new_visitors_page_and_zone_are_kept_and_name_them_in_the_console(
    server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, ready, _ = await Client.connect(server.ws_url, lang="en", page="example.com/tariffs?email=a@b.example#x",
                                            tz="Asia/Yekaterinburg")
    ack = await client.say("c1", "hello")
    await client.close()
    visitor = ready["visitor_id"]
    # The query string and fragment never get stored, whatever the client sent.
    assert await origin_and_zone(sessionmaker, visitor) == ("example.com/tariffs", "Asia/Yekaterinburg")

    # The same visitor back from another page and zone: what their first contact said stays.
    again, _, _ = await Client.connect(server.ws_url, lang="en", token=ready["session_token"],
                                       page="example.com/other", tz="Europe/Berlin")
    await again.say("c2", "hello again")
    await again.close()
    assert await origin_and_zone(sessionmaker, visitor) == ("example.com/tariffs", "Asia/Yekaterinburg")

    # A visitor without a page keeps today's name.
    plain, plain_ready, _ = await Client.connect(server.ws_url, lang="en")
    plain_ack = await plain.say("p1", "hello")
    await plain.close()
    assert await origin_and_zone(sessionmaker, plain_ready["visitor_id"]) == (None, None)

    user, _ = await make_user(sessionmaker, Role.admin, "olga@test.example")
    async with httpx.AsyncClient(base_url=server.url) as console:
        assert (await login(console, "olga@test.example")).status_code == 303
        for language, friendly, plain_text in (("en", "Visitor from example.com/tariffs, ", "Web-chat visitor, "),
                                               ("ru", "Посетитель с example.com/tariffs, ", "Посетитель чата, ")):
            await set_language(sessionmaker, user.id, language)
            # The bot answered the plain visitor; the other asked twice and waits for an agent.
            waiting = await console.get("/console/inbox", params={"view": "all"})
            answered = await console.get("/console/inbox", params={"view": "all", "status": "bot"})
            assert friendly in waiting.text and plain_text in answered.text
            ticket = await console.get(f"/console/tickets/{ack['ticket']}")
            assert ticket.status_code == 200 and friendly in ticket.text
            other = await console.get(f"/console/tickets/{plain_ack['ticket']}")
            assert plain_text in other.text and friendly not in other.text


@sqlite_only
@pytest.mark.parametrize(("page", "tz"), [
    ("javascript:alert(1)//example.com/", "../../../etc/passwd"),
    ("example.com/\x1b[31mred\u202e", "Europe/Moscow\x00"),
    ("example.com/\x00", "\ud800"),
    ("example.com/" + "a" * 10_000, "localtime"),
    ("data:text/html,<script>alert(1)</script>", "Not/A_Zone"),
    (["example.com"], {"zone": "UTC"}),
])
async def test_a_hostile_page_or_zone_is_ignored_without_failing_sign_in(
    server: Server, sessionmaker: async_sessionmaker[AsyncSession], page: object, tz: object
) -> None:
    client, ready, _ = await Client.connect(server.ws_url, lang="en", page=page, tz=tz)
    assert ready["type"] == "ready", ready
    await client.say("h1", "hello")
    await client.close()
    assert await origin_and_zone(sessionmaker, ready["visitor_id"]) == (None, None)


@sqlite_only
async def test_a_known_customers_time_zone_is_not_overwritten(
    server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    signed = {"identifier": "user-7", "identifier_hash": tokens.identity_hash(SITE_SECRET, "user-7")}
    first, ready, _ = await Client.connect(server.ws_url, lang="en", **signed)
    await first.say("k1", "hello")
    await first.close()
    visitor = ready["visitor_id"]
    assert await origin_and_zone(sessionmaker, visitor) == (None, None)
    async with sessionmaker() as session, session.begin():
        identity = await session.scalar(select(ChannelIdentity).where(ChannelIdentity.external_id == visitor))
        assert identity is not None
        customer = await session.get(Customer, identity.customer_id)
        assert customer is not None
        customer.time_zone = "Europe/Moscow"
    again, _, _ = await Client.connect(server.ws_url, lang="en", page="example.com/account", tz="America/New_York",
                                       **signed)
    await again.say("k2", "hello again")
    await again.close()
    assert await origin_and_zone(sessionmaker, visitor) == (None, "Europe/Moscow")
