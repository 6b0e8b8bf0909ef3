"""A real database outage answers 503 with Retry-After everywhere, and the same app serves again once it is back.

The database is a private PostgreSQL cluster the test starts itself: it is stopped (connections refused), started
as a standby that accepts no connections ("the database system is not accepting connections", SQLSTATE 57P03,
what a server starting up or recovering answers), promoted, and its backends are terminated in the middle of a
request. No mocks: the errors are whatever asyncpg and SQLAlchemy raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.telegram.settings import TelegramChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from core.db.migrate import upgrade
from core.db.outage import is_database_outage
from core.db.session import create_engine, create_sessionmaker
from core.users.models import Role
from tests.channels.telegram.botapi import TOKEN, fixture, running_bot_api
from tests.conftest import REST_HEADERS, REST_KEY, free_port, keyword_engine, make_settings, make_user, responses
from tests.pgcluster import PrivateCluster, postgres_bin
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL server binaries are not installed")
TG_SECRET = "outage-secret"


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    pg = PrivateCluster()
    try:
        pg.start()
        pg.createdb("sb")
        upgrade(pg.url("sb"))
        yield pg
    finally:
        pg.destroy()


def rest(ext_id: str) -> dict[str, Any]:
    return {"external_message_id": ext_id, "sender": {"external_id": "c-1", "name": "Outage"}, "text": "hello"}


# A database coming back takes its time on a busy machine.
wait_until = functools.partial(wait_for, timeout=60.0, interval=0.1)


@contextlib.asynccontextmanager
async def app_on(url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_bot_api() as bot_api:
        telegram = TelegramChannelSettings(
            enabled=True, token=SecretStr(TOKEN), mode="webhook", base_url=bot_api.base_url,
            base_file_url=bot_api.base_file_url, webhook_url="https://bot.example/channels/telegram/webhook",
            webhook_secret=SecretStr(TG_SECRET), request_timeout_seconds=5, retry_backoff_max_seconds=0.5)
        settings = make_settings(url, data_dir=tmp_path, channels=ChannelsSettings(
            rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), telegram=telegram,
            webchat=WebchatChannelSettings(enabled=False)))
        app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
        async with app.router.lifespan_context(app):
            adapter = app.state.switchboard.channels.get("telegram")
            await asyncio.wait_for(adapter.ready.wait(), 30)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                         timeout=60) as client:
                yield client


async def requests(client: httpx.AsyncClient, bearer: dict[str, str], cookie: str, n: int) -> dict[str, Any]:
    """The API, the REST channel, the console and the Telegram webhook, as their callers send them."""
    tg = fixture("text_message", 100 + n, message_id=500 + n)
    return {
        "tickets": await client.get("/tickets", headers=bearer),
        "me": await client.get("/auth/me", headers=bearer),
        "replies": await client.get("/channels/rest/replies", headers=REST_HEADERS),
        "post": await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest(f"m-{n}")),
        "console": await client.get("/console/inbox", headers={"Cookie": f"sb_session={cookie}"}),
        "telegram": await client.post("/channels/telegram/webhook", json=tg,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}),
    }


def assert_unavailable(answers: dict[str, httpx.Response]) -> None:
    for name, r in answers.items():
        assert r.status_code == 503, (name, r.status_code, r.text[:300])
        if name == "console":
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["retry-after"] == "5"
            assert "Temporarily unavailable" in r.text and "Временно недоступно" in r.text
        elif name != "telegram":
            assert r.headers["retry-after"] == "5", name
            assert r.json()["error"] == "database_unavailable", name


async def terminate_lock_waiters(url: str, blocker: asyncpg.Connection) -> bool:
    """Terminate the backends waiting on a lock (the blocker's), if any yet. Asked on a connection of its own
    outside any transaction: inside the blocker's transaction pg_stat_activity is one snapshot, taken at its first
    read, which never shows a backend that started waiting after it."""
    watcher = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await watcher.fetch("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND pid NOT IN (pg_backend_pid(), $1)", blocker.get_server_pid())
        for row in rows:
            await watcher.execute("SELECT pg_terminate_backend($1)", row["pid"])
        return bool(rows)
    finally:
        await watcher.close()


async def test_refused_starting_up_and_killed_mid_request_are_503_and_the_app_recovers(
        cluster: PrivateCluster, tmp_path: Path) -> None:
    url = cluster.url("sb")
    engine = create_engine(url)
    try:
        _user, token = await make_user(create_sessionmaker(engine), Role.agent, "outage@test.example")
    finally:
        await engine.dispose()
    bearer = {"Authorization": f"Bearer {token}"}
    async with app_on(url, tmp_path) as client:
        answers = await requests(client, bearer, token, 1)
        assert {k: r.status_code for k, r in answers.items()} == {
            "tickets": 200, "me": 200, "replies": 200, "post": 201, "console": 200, "telegram": 200}

        # Down: every new connection is refused.
        await asyncio.to_thread(cluster.stop, "fast")
        assert_unavailable(await requests(client, bearer, token, 2))

        # Starting up / recovering: the server answers, but refuses connections with 57P03.
        await asyncio.to_thread(cluster.start, standby=True)
        assert_unavailable(await requests(client, bearer, token, 3))

        # Back: the same app, no restart.
        await asyncio.to_thread(cluster.promote)

        async def serving() -> bool:
            return (await client.get("/auth/me", headers=bearer)).status_code == 200

        await wait_until(serving)
        answers = await requests(client, bearer, token, 2)  # the messages refused during the outage, resent
        assert {k: r.status_code for k, r in answers.items()} == {
            "tickets": 200, "me": 200, "replies": 200, "post": 201, "console": 200, "telegram": 200}

        # Killed mid-request: the request waits on a lock, and its backend is terminated under it.
        blocker = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await blocker.execute("BEGIN; LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
            pending = asyncio.create_task(client.get("/tickets", headers=bearer))

            async def waiting_pid() -> bool:
                return await terminate_lock_waiters(url, blocker)

            await wait_until(waiting_pid)
            r = await pending
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "database_unavailable"
        finally:
            await blocker.execute("ROLLBACK")
            await blocker.close()
        assert (await client.get("/tickets", headers=bearer)).status_code == 200


async def test_a_commit_that_fails_is_not_answered_200(cluster: PrivateCluster, tmp_path: Path) -> None:
    """The request's unit of work commits before the response goes out: when the commit itself meets the outage
    (here the UPDATE of the user's last-seen time, written at commit, waits on a row lock and its backend is
    terminated), the caller gets 503, not a 200 for something that was never stored."""
    url = cluster.url("sb")
    engine = create_engine(url)
    try:
        user, token = await make_user(create_sessionmaker(engine), Role.agent, "commit@test.example")
    finally:
        await engine.dispose()
    bearer = {"Authorization": f"Bearer {token}"}
    async with app_on(url, tmp_path) as client:
        blocker = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await blocker.execute("BEGIN")
            await blocker.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user.id)
            pending = asyncio.create_task(client.get("/auth/me", headers=bearer))

            async def terminate_waiting() -> bool:
                return await terminate_lock_waiters(url, blocker)

            await wait_until(terminate_waiting)
            r = await pending
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "database_unavailable"
        finally:
            await blocker.execute("ROLLBACK")
            await blocker.close()
        assert (await client.get("/auth/me", headers=bearer)).status_code == 200


def test_the_outage_test_is_about_real_driver_errors() -> None:
    """The errors the classification is for, raised by the real drivers, and what is not an outage."""
    async def connect() -> None:
        engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    with pytest.raises(ConnectionRefusedError) as refused:
        asyncio.run(connect())
    assert is_database_outage(refused.value)
    with pytest.raises(FileNotFoundError) as missing:
        Path(f"/nonexistent/{uuid.uuid4().hex}").read_bytes()
    assert not is_database_outage(missing.value)  # an OSError, but not from a database driver
    assert not is_database_outage(ValueError("bug"))


@pytest.mark.postgres
def test_an_exhausted_pool_is_an_outage_too() -> None:
    """Every connection busy past the pool timeout: SQLAlchemy's TimeoutError, a 'retry later' like the others."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")

    async def exhaust() -> None:
        engine = create_async_engine(PG_URL, pool_size=1, max_overflow=0, pool_timeout=0.2)
        try:
            async with engine.connect() as held:
                await held.execute(text("SELECT 1"))
                async with engine.connect() as second:
                    await second.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    with pytest.raises(PoolTimeout) as timed_out:
        asyncio.run(exhaust())
    assert is_database_outage(timed_out.value)


async def test_web_chat_says_unavailable_while_the_database_is_down(cluster: PrivateCluster, tmp_path: Path) -> None:
    """A returning visitor's sign-in reads the history: without the database the widget gets 'unavailable' and a 1013
    close (try again later); a connected widget gets 'unavailable' for what needs the database and keeps its socket."""
    import websockets

    from tests.channels.webchat.conftest import Client, start_server

    info = await start_server(cluster.url("sb"), tmp_path)
    try:
        connected, ready, _ = await Client.connect(info.ws_url, lang="en")
        assert ready["type"] == "ready"
        await asyncio.to_thread(cluster.stop, "fast")

        token = ready["session_token"]
        refused = Client(await websockets.connect(info.ws_url))
        await refused.send({"type": "auth", "lang": "en", "token": token})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await refused.next("never")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert [f["code"] for f in refused.frames if f["type"] == "error"] == ["unavailable"]

        await connected.send({"type": "history", "after": 0})
        assert (await connected.next("error"))["code"] == "unavailable"
        await connected.send({"type": "message", "client_id": "during-outage", "text": "hello"})
        assert (await connected.next("error"))["code"] == "unavailable"
        await connected.send({"type": "ping"})
        assert (await connected.next("pong"))["type"] == "pong"  # the socket survived

        await asyncio.to_thread(cluster.start)

        async def signs_in() -> bool:
            client, first, _ = await Client.connect(info.ws_url, lang="en", token=token)
            await client.close()
            return bool(first["type"] == "ready")

        await wait_until(signs_in)
        ack = await connected.say("during-outage", "hello")  # the widget resends; stored once
        assert ack["duplicate"] is False
        await connected.close()
    finally:
        await info.stop()
