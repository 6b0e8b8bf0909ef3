"""Fault scenario: three instances through a Redis outage (issue 20).

    .venv/bin/python bench/faults_redis.py [--short] [--postgres URL]

Three real `switchboard serve` processes (A, B, C) on one private PostgreSQL database, a private redis-server on
its own port (never the machine's shared one) and a shared model dir with two NLU versions. Customers' widgets
are open on A; an agent replies through C at a steady pace. Redis is killed for ~20 s (`--short`: 4 s) while the
agent keeps replying, and an admin rolls the NLU model back through C in the middle of the outage. Printed, one
row: replies sent; shown on the widget within a second (live); shown later while Redis was still down (the
instance's database look-ups); shown after Redis was back (catch-up on reconnect); never shown; the longest
wait; the longest wait of a reply sent after Redis was back; how long until all three /health said ok again;
how long after the rollback all three instances parsed with the rolled-back version.

`run(short)` returns the same numbers as a dict (the fault suite calls it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402

from bench.ingest import admin_sql, private_database  # noqa: E402
from tests.support.net import free_port  # noqa: E402

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REPLY_EVERY = 0.25  # seconds between agent replies
LIVE_WITHIN = 1.0  # a reply shown this soon counts as live


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (bash scripts/system-deps.sh)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30)


def start_server(name: str, workdir: Path, env: dict[str, str]) -> Server:
    port = free_port()
    binary = Path(sys.executable).parent / "switchboard"
    log = (workdir / f"{name}.log").open("wb")
    # Its own working directory: no .env of the repository is read.
    proc = subprocess.Popen([str(binary), "serve", "--port", str(port)], cwd=workdir, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    return Server(name, port, proc)


async def wait_until(check: Any, limit: float, what: str) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError, KeyError, ValueError):
            if result := await check():
                return result
        await asyncio.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def prepare_models(models: Path) -> tuple[str, str]:
    """The shipped data trained once, copied as a second version made active: a rollback has somewhere to go."""
    from nlu.config import NluSettings
    from nlu.embedded import ACTIVE_FILE, EmbeddedEngine
    from nlu.engines import build_engine

    build_engine(NluSettings(), models)
    first = (models / ACTIVE_FILE).read_text().strip()
    second = f"{first}-second"
    shutil.copytree(models / first, models / second)
    EmbeddedEngine(models).activate(second)
    return first, second


async def make_tokens(url: str) -> tuple[str, str]:
    from datetime import timedelta

    from core.db.session import create_engine, create_sessionmaker
    from core.tickets import repository as ticket_repo
    from core.users import service as users
    from core.users.models import Role

    engine = create_engine(url)
    tokens = []
    async with create_sessionmaker(engine)() as session, session.begin():
        team = await ticket_repo.get_team_by_slug(session, "general")
        for email, role in (("agent@bench.example", Role.agent), ("admin@bench.example", Role.admin)):
            user = await users.create(session, email=email, name=email.split("@")[0], password="password-123",  # noqa: S106
                                      role=role, team=team)
            tokens.append(await users.issue_token(session, user, timedelta(hours=2)))
    await engine.dispose()
    return tokens[0], tokens[1]


class Widget:
    """One customer's open widget on A: the time each message text was first shown."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.shown: dict[str, float] = {}
        self.ticket = ""
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, index: int) -> Widget:
        ws = await websockets.connect(url)
        widget = cls(ws)
        await ws.send(json.dumps({"type": "auth", "lang": "en"}))
        await ws.send(json.dumps({"type": "message", "client_id": f"c{index}", "text": "hello, my internet is down"}))
        while not widget.ticket:
            frame = json.loads(await ws.recv())
            if frame["type"] == "ack":
                widget.ticket = frame["ticket"]
        widget._task = asyncio.create_task(widget._read())
        return widget

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    self.shown.setdefault(frame["text"], time.monotonic())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


async def scenario(url: str, workdir: Path, short: bool) -> dict[str, Any]:
    outage = 4.0 if short else 20.0
    calm = 2.0 if short else 5.0
    models = workdir / "data" / "models"
    models.mkdir(parents=True)
    first, _second = await asyncio.to_thread(prepare_models, models)
    agent_token, admin_token = await make_tokens(url)
    redis = Redis(workdir / "redis")
    redis.start()
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": url, "SWITCHBOARD_DATA_DIR": str(workdir / "data"),
           "SWITCHBOARD_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "SWITCHBOARD_LOG_LEVEL": "WARNING",
           "SWITCHBOARD_SECRET_KEY": "bench-faults-redis-secret", "SWITCHBOARD_SEED_NLU_DATA": "true"}
    servers = [start_server(name, workdir, env) for name in ("A", "B", "C")]
    a, _b, c = servers
    widgets: list[Widget] = []
    agent = {"Authorization": f"Bearer {agent_token}"}
    try:
        async def healthy() -> bool:
            states = [(await s.http.get("/health")).json() for s in servers]
            return all(h["workers"]["redis_events"]["state"] == "connected" for h in states)

        await wait_until(healthy, 120, "three instances connected to Redis")
        ws_url = f"ws://127.0.0.1:{a.port}/channels/webchat/ws"
        widgets = [await Widget.open(ws_url, i) for i in range(5)]
        sent: list[tuple[str, Widget, float]] = []
        stop = asyncio.Event()

        async def agent_replies() -> None:
            n = 0
            while not stop.is_set():
                widget = widgets[n % len(widgets)]
                text = f"reply {n}"
                started = time.monotonic()
                with contextlib.suppress(httpx.HTTPError):
                    response = await c.http.post(f"/tickets/{widget.ticket}/reply", json={"text": text},
                                                 headers=agent)
                    if response.status_code == 201:
                        sent.append((text, widget, started))
                n += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REPLY_EVERY)

        replier = asyncio.create_task(agent_replies())
        await asyncio.sleep(calm)
        redis.kill()
        killed = time.monotonic()
        await asyncio.sleep(outage / 2)
        rollback = await c.http.post("/admin/nlu/versions/rollback",
                                     headers={"Authorization": f"Bearer {admin_token}"})
        rolled_back = time.monotonic()
        if rollback.status_code != 200:
            raise RuntimeError(f"rollback failed: {rollback.status_code} {rollback.text[:300]}")

        async def converged() -> bool:
            states = [(await s.http.get("/health")).json()["nlu"] for s in servers]
            return all(n["version"] == first for n in states)

        await wait_until(converged, 60, "the rolled-back version on every instance")
        converged_after = time.monotonic() - rolled_back
        await asyncio.sleep(max(0.0, outage - (time.monotonic() - killed)))
        redis.start()
        back = time.monotonic()

        async def all_ok() -> bool:
            states = [(await s.http.get("/health")).json() for s in servers]
            return all(h["status"] == "ok" and h["workers"]["redis_events"]["state"] == "connected" for h in states)

        await wait_until(all_ok, 60, "every instance healthy after Redis is back")
        healthy_after = time.monotonic() - back
        await asyncio.sleep(max(0.0, calm - healthy_after))
        stop.set()
        await replier

        async def all_shown() -> bool:
            return all(text in widget.shown for text, widget, _ in sent)

        with contextlib.suppress(RuntimeError):
            await wait_until(all_shown, 30, "every reply on its widget")
        counts = {"live": 0, "late_during_outage": 0, "caught_up_after_recovery": 0, "never_shown": 0}
        longest = after_recovery = 0.0
        for text, widget, started in sent:
            at = widget.shown.get(text)
            if at is None:
                counts["never_shown"] += 1
                continue
            longest = max(longest, at - started)
            if started >= back:
                after_recovery = max(after_recovery, at - started)
            if at - started <= LIVE_WITHIN:
                counts["live"] += 1
            elif at < back:
                counts["late_during_outage"] += 1
            else:
                counts["caught_up_after_recovery"] += 1
        return {"outage_s": outage, "sent": len(sent), **counts, "longest_wait_s": round(longest, 2),
                "after_recovery_max_s": round(after_recovery, 3), "healthy_after_s": round(healthy_after, 2),
                "model_converged_s": round(converged_after, 2)}
    finally:
        for widget in widgets:
            await widget.close()
        for server in servers:
            await server.http.aclose()
            server.proc.terminate()
        for server in servers:
            try:
                server.proc.wait(20)
            except subprocess.TimeoutExpired:
                server.proc.kill()
        redis.kill()


def run(short: bool, postgres: str | None = None) -> dict[str, Any]:
    """The whole scenario in a private database and a temporary folder, both removed afterwards."""
    server_url = postgres or os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    url, name = private_database(server_url)
    workdir = Path(tempfile.mkdtemp(prefix="sb-faults-redis-"))
    try:
        from core.db.migrate import upgrade

        upgrade(url)
        return asyncio.run(scenario(url, workdir, short))
    finally:
        admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def print_row(result: dict[str, Any]) -> None:
    columns = ["outage_s", "sent", "live", "late_during_outage", "caught_up_after_recovery", "never_shown",
               "longest_wait_s", "after_recovery_max_s", "healthy_after_s", "model_converged_s"]
    widths = [max(len(c), len(str(result[c]))) for c in columns]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    print(" | ".join(str(result[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="a 4 s outage instead of 20 s")
    parser.add_argument("--postgres", help=f"PostgreSQL server URL (a private database is made on it); "
                                           f"default $SWITCHBOARD_TEST_POSTGRES_URL or {DEFAULT_POSTGRES}")
    args = parser.parse_args()
    print_row(run(args.short, args.postgres))


if __name__ == "__main__":
    cli()
