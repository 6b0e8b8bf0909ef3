"""Three instances on one PostgreSQL database and a private Redis the test kills and starts again (issue 20).

A customer's widget is open on A, an agent's console stream on B, agents reply through C. While Redis is
down, and after it is back, nothing has to be reloaded: the replies reach the widget, the console is told to
refresh, a model rollback made during the outage reaches every instance, and /health says what is going on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from api.console.security import SESSION_COOKIE
from channels.config import ChannelsSettings, RestChannelSettings
from core.config import CoreSettings
from core.db.session import create_engine, create_sessionmaker
from core.users.models import Role
from nlu.embedded import ACTIVE_FILE, EmbeddedEngine
from tests.channels.webchat.conftest import Client
from tests.conftest import REST_KEY, _truncate_pg, make_settings, make_user, responses
from tests.redis_helpers import PrivateRedis
from tests.support.server import LiveServer, start_server
from tests.support.waiting import wait_for as eventually

pytestmark = pytest.mark.postgres


@dataclass
class Instance:
    name: str
    live: LiveServer
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def app(self) -> Any:
        return self.live.app

    async def health(self) -> dict[str, Any]:
        response = await self.http.get("/health")
        body: dict[str, Any] = response.json()
        return body

    async def stop(self) -> None:
        await self.http.aclose()
        await self.live.stop()


async def start_instance(name: str, db_url: str, data_dir: Path, models: Path, redis_url: str,
                         **overrides: Any) -> Instance:
    engine = EmbeddedEngine(models)
    engine.load_active()
    values: dict[str, Any] = {"redis_url": redis_url, "redis_reconnect_max_seconds": 0.5,
                              "live_poll_seconds": 0.2, "model_sync_seconds": 0.5}
    values.update(overrides)
    settings = make_settings(db_url, data_dir=data_dir, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY))), **values)
    app = create_app(settings, nlu_engine=engine, responses=responses, configure_logs=False)
    return Instance(name, await start_server(app))


class ConsoleStream:
    """The console's SSE stream on one instance, reconnecting like EventSource does; keeps every event."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, cookies={SESSION_COOKIE: self.token},
                                     timeout=httpx.Timeout(30, read=None)) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    async with client.stream("GET", "/console/events") as response:
                        kind = "message"
                        async for line in response.aiter_lines():
                            if line.startswith("event: "):
                                kind = line[7:]
                            elif line.startswith("data: "):
                                self.events.append((kind, json.loads(line[6:])))
                await asyncio.sleep(0.2)

    def kinds(self, start: int = 0) -> list[str]:
        return [kind for kind, _ in self.events[start:]]


@pytest.fixture
async def pg_url(pg_migrated: str | None) -> str:
    if pg_migrated is None:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    await _truncate_pg(pg_migrated)
    return pg_migrated


@pytest.fixture
def models(tmp_path: Path, trained_model_dir: Path) -> tuple[Path, str, str]:
    """A model dir all instances share, with two versions; the second is active."""
    path = tmp_path / "models"
    shutil.copytree(trained_model_dir, path)
    first = (path / ACTIVE_FILE).read_text().strip()
    second = f"{first}-second"
    shutil.copytree(path / first, path / second)
    EmbeddedEngine(path).activate(second)
    return path, first, second


async def test_three_instances_through_a_redis_outage(pg_url: str, tmp_path: Path, models: tuple[Path, str, str],
                                                      private_redis: PrivateRedis) -> None:
    model_dir, first, second = models
    # A looks at the database only when the bridge comes back (no polling while it is down), and its outbox
    # worker sends only what A itself queued (C's replies are C's, or B's, to send), so its widget can get the
    # outage's replies only from the catch-up after the reconnect; B polls while down.
    a = await start_instance("A", pg_url, tmp_path, model_dir, private_redis.url, live_poll_seconds=3600,
                             core=CoreSettings(outbox_poll_seconds=3600))
    b = await start_instance("B", pg_url, tmp_path, model_dir, private_redis.url)
    c = await start_instance("C", pg_url, tmp_path, model_dir, private_redis.url)
    instances = (a, b, c)
    db = create_engine(pg_url)
    sessionmaker = create_sessionmaker(db)
    _, agent_token = await make_user(sessionmaker, Role.agent, "agent@test.example", "general")
    _, admin_token = await make_user(sessionmaker, Role.admin, "admin@test.example")
    agent = {"Authorization": f"Bearer {agent_token}"}
    admin = {"Authorization": f"Bearer {admin_token}"}
    console = ConsoleStream(b.url, agent_token)
    widget: Client | None = None

    async def all_healthy() -> bool:
        states = [await i.health() for i in instances]
        return all(h["status"] == "ok" and h["workers"]["redis_events"]["state"] == "connected"
                   and h["nlu"]["in_sync"] for h in states)

    def widget_texts() -> list[str]:
        assert widget is not None
        return [f["text"] for f in widget.frames if f["type"] == "message"]

    async def widget_shows(*texts: str) -> bool:
        """Read frames for a moment; true once every text has arrived."""
        assert widget is not None
        with contextlib.suppress(TimeoutError):
            await widget.next("__none__", timeout=0.1)
        return all(t in widget_texts() for t in texts)

    async def reply(text: str) -> int:
        response = await c.http.post(f"/tickets/{ticket}/reply", json={"text": text}, headers=agent)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    try:
        await eventually(all_healthy, "three healthy instances")
        console.start()
        await eventually(lambda: asyncio.sleep(0, "hello" in console.kinds()), "the console stream on B")

        widget, _, _ = await Client.connect(a.url.replace("http", "ws") + "/channels/webchat/ws", lang="en")
        ack = await widget.say("c1", "hello, my internet is down")
        ticket = ack["ticket"]
        await reply("before the outage")
        await eventually(lambda: widget_shows("before the outage"), "a live reply before the outage")

        # --- Redis dies --------------------------------------------------------------------------------
        private_redis.kill()

        async def all_degraded() -> bool:
            states = [await i.health() for i in instances]
            return all(h["status"] == "degraded" and h["workers"]["redis_events"]["state"] == "down"
                       for h in states)

        await eventually(all_degraded, "every instance degraded with the bridge down")
        metrics = (await a.http.get("/metrics")).text
        assert 'switchboard_redis_bridge_state{state="down"} 3.0' in metrics

        mark = len(console.events)
        during = [await reply("during the outage 1"), await reply("during the outage 2")]
        rollback = await c.http.post("/admin/nlu/versions/rollback", headers=admin)
        assert rollback.status_code == 200, rollback.text
        assert next(v for v in rollback.json() if v["active"])["version"] == first

        # The console on B is told to refresh while Redis is still down (B looks at the database).
        await eventually(lambda: asyncio.sleep(0, "resync" in console.kinds(mark)), "a resync on the console")
        # The rollback reaches A and B through the database, Redis or not.

        async def all_on_first() -> list[dict[str, Any]] | None:
            states = [(await i.health())["nlu"] for i in instances]
            return states if all(n["version"] == first and n["in_sync"] for n in states) else None

        await eventually(all_on_first, "the rollback on every instance during the outage")
        assert not await widget_shows("during the outage 1")  # A waits for the bridge: nothing yet

        # --- Redis is back -----------------------------------------------------------------------------
        await private_redis.start()
        await eventually(all_healthy, "every instance healthy again")
        await eventually(lambda: widget_shows("during the outage 1", "during the outage 2"),
                         "the outage's replies on the open widget")
        sync = [f for f in widget.frames if f["type"] == "sync"]
        assert sync and sync[-1]["cursor"] >= max(during)
        texts = widget_texts()
        assert texts.index("during the outage 1") < texts.index("during the outage 2")
        assert texts.count("during the outage 1") == 1  # caught up once, not again by a live event

        await reply("after the outage")
        await eventually(lambda: widget_shows("after the outage"), "a live reply after the outage")
        mark = len(console.events)
        await reply("seen by the console")
        await eventually(lambda: asyncio.sleep(0, "change" in console.kinds(mark)), "a live console change")

        metrics = (await a.http.get("/metrics")).text
        assert 'switchboard_redis_bridge_state{state="connected"} 3.0' in metrics
        assert "switchboard_redis_bridge_reconnects_total 3.0" in metrics
        assert 'switchboard_redis_bridge_events_total{event="dropped"} 0.0' in metrics

        # Each instance reports the version it parses with; the versions API lists them.
        ids = {i.app.state.switchboard.instance_id for i in instances}

        async def reported() -> list[dict[str, Any]] | None:
            rows = (await a.http.get("/admin/nlu/versions/instances", headers=admin)).json()
            return rows if {r["id"] for r in rows} == ids and all(r["in_sync"] for r in rows) else None

        rows = await eventually(reported, "three instances reporting the active version")
        assert {r["version"] for r in rows} == {first}
        versions = (await a.http.get("/admin/nlu/versions", headers=admin)).json()
        by_name = {v["version"]: v for v in versions}
        assert by_name[first]["active"] and by_name[first]["loaded_here"]
        assert set(by_name[first]["instances"]) == ids
        assert not by_name[second]["active"] and not by_name[second]["loaded_here"]
    finally:
        await console.stop()
        if widget is not None:
            await widget.close()
        for instance in instances:
            await instance.stop()
        await db.dispose()
