"""The permanent fault suite: real traffic through the real server while its parts are killed and restarted.

    .venv/bin/python bench/faults.py [--short] [--only NAME ...] [--json FILE] [--server-root DIR]

Each scenario runs the whole app (uvicorn, one process per instance) on a PostgreSQL cluster this script starts
itself (initdb on a free port in a temporary directory, run as the `postgres` user; never the machine's shared
server), sends traffic the way a real client does (a message that gets no answer is sent again with the same
id), breaks something on a schedule, then lets the outbox drain and counts, from the database and from the
receivers' side, one row per scenario:

    sent            distinct messages the clients tried to send
    acknowledged    of those, the ones the server acknowledged (2xx) - the ones that must not be lost
    stored once     acknowledged messages stored exactly once
    lost            acknowledged messages not stored
    stored twice    messages stored more than once
    replies expected  outbound rows the server queued for these conversations
    delivered       replies the receiver (webhook, Bot API stand-in) got at least once
    delivered twice replies it got more than once (at-least-once delivery: the receiver de-duplicates)
    stuck           replies not `sent` once the outbox has drained (queued, sending or failed)

Targets: 0 lost, 0 stored twice, 0 stuck, delivered twice < 0.5 % of replies. `--short` is the CI version
(seconds per scenario, tests/bench/test_faults.py); the default, full mode sends 3,000 messages per traffic
scenario. Everything listens on 127.0.0.1 only.

Scenarios register with `@scenario("name")` (a coroutine taking the Context and returning a Row), so other
modules can add theirs: import this module, decorate, and call `main()`.
`--throughput` measures the outbox's pace instead (no fault: `--messages` REST replies queued first, then
delivered by a fresh instance; replies delivered per second).
`--server-root DIR` runs the server from another checkout of the code (e.g. `git archive <commit>` unpacked),
to measure a change against what was there before. `--messages N` and `--kill-every S` override the mode;
FAULTS_DEBUG=1 prints, for each REST reply delivered twice, how long before a kill it was first delivered;
FAULTS_TRACE=1 has the server trace its outbox and prints, per kill, what the dead process had on the wire and
received but not yet recorded, with the event loop's lag and the response-to-commit latency (`kill_report`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Conn  # noqa: E402 - after the path is set
from tests.support.net import free_port  # noqa: E402

API_KEY = "faults-key"
TOKEN = "123456:FAULTS"  # noqa: S105 - a fake bot token for the local Bot API stand-in
SECRET = "faults-secret"  # noqa: S105
KEYWORDS = {"greeting": ["hello", "привет"], "human_handoff": ["operator"]}
ANSWERS = {("greeting", "en"): "Hello! How can I help?", ("greeting", "ru"): "Здравствуйте! Чем помочь?"}


# -- results and the registry ---------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    faults: int = 0  # kills or outages that happened while traffic ran (0: the scenario proved nothing)
    sent: int = 0
    acknowledged: int = 0
    stored_once: int = 0
    lost: int = 0
    stored_twice: int = 0
    replies_expected: int = 0
    delivered: int = 0
    delivered_twice: int = 0
    stuck: int = 0
    notes: str = ""

    def problems(self) -> list[str]:
        """The correctness targets this row misses (never timing)."""
        out = [f"{name} = {getattr(self, name)}" for name in ("lost", "stored_twice", "stuck") if getattr(self, name)]
        if not self.faults:
            out.append("no fault happened while the traffic ran")
        if self.replies_expected and self.delivered_twice / self.replies_expected >= 0.005:
            out.append(f"delivered twice {self.delivered_twice}/{self.replies_expected} >= 0.5 %")
        return out


@dataclass(frozen=True)
class Mode:
    name: str
    messages: int  # per traffic scenario
    rate: float  # messages per second offered
    kill_every: float  # seconds of service between two kill -9
    max_kills: int  # per scenario (the short mode keeps CI bounded)
    outage_seconds: float  # how long a dependency stays down
    mail_outage_seconds: float
    settle_seconds: float  # most to wait for the outbox to drain at the end


SHORT = Mode("short", messages=160, rate=60.0, kill_every=1.5, max_kills=2, outage_seconds=3.0,
             mail_outage_seconds=4.0, settle_seconds=90.0)
FULL = Mode("full", messages=3000, rate=100.0, kill_every=4.0, max_kills=1000, outage_seconds=15.0,
            mail_outage_seconds=60.0, settle_seconds=150.0)


@dataclass
class Context:
    mode: Mode
    workdir: Path
    server_root: Path
    cluster: PrivateCluster
    _databases: int = 0

    async def database(self) -> str:
        """A fresh, migrated database on the private cluster."""
        self._databases += 1
        name = f"faults_{self._databases}"
        await self.cluster.sql(f'CREATE DATABASE "{name}"')
        url = self.cluster.url(name)
        from core.db.migrate import upgrade_async

        await upgrade_async(url)
        return url


Scenario = Callable[[Context], Awaitable[Row]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario under `name` (rows print in registration order)."""
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = fn
        return fn
    return register


# -- the pieces: a private PostgreSQL, the server, the receivers ----------------------------------------


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivateCluster:
    """A PostgreSQL cluster of our own (initdb in a temporary directory, a free port), stopped and started at
    will; the machine's shared server is never touched."""

    def __init__(self, root: Path) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
        if not candidates:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(candidates[-1])
        self.dir = root / "pg"
        self.data = self.dir / "data"
        self.port = free_port()

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(as_postgres([str(self.bin / tool), *args]), capture_output=True, text=True,
                                check=False, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {result.stdout[-500:]} {result.stderr[-1000:]}")

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            # The postgres user must reach its directory through the temporary one (mode 700, root's).
            self.dir.parent.chmod(0o755)
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def sql(self, statement: str, database: str = "postgres") -> None:
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database=database)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


def fault_app() -> Any:
    """The app under test (a uvicorn factory), set up from FAULTS_* variables by the scenario."""
    from pydantic import SecretStr

    from api.app import create_app
    from api.settings import Settings
    from channels.config import ChannelsSettings, RestChannelSettings
    from channels.email.settings import EmailChannelSettings, ImapMailboxSettings, SmtpSettings
    from channels.telegram.settings import TelegramChannelSettings
    from nlu.protocol import KeywordEngine

    env = os.environ
    botapi = env.get("FAULTS_BOTAPI_PORT")
    email = EmailChannelSettings()
    if env.get("FAULTS_IMAP_PORT"):
        user = env["FAULTS_IMAP_USER"]
        email = EmailChannelSettings(
            enabled=True, from_address="support@support.example", message_id_domain="support.example",
            mailboxes=[ImapMailboxSettings(
                name=user, host="127.0.0.1", port=int(env["FAULTS_IMAP_PORT"]), security="none", username=user,
                password=SecretStr(env["FAULTS_IMAP_PASSWORD"]), address="support@support.example",
                first_start="all", poll_seconds=2.0)],
            smtp=SmtpSettings(host="127.0.0.1", port=int(env["FAULTS_SMTP_PORT"]), security="none",
                              timeout_seconds=5),
            imap_timeout_seconds=5, reconnect_initial_seconds=0.2, reconnect_max_seconds=2.0)
    channels = ChannelsSettings(
        email=email,
        rest=RestChannelSettings(api_key=SecretStr(API_KEY), webhook_url=env.get("FAULTS_WEBHOOK_URL") or None),
        telegram=TelegramChannelSettings(
            enabled=bool(botapi), token=SecretStr(TOKEN), mode="webhook", webhook_secret=SecretStr(SECRET),
            base_url=f"http://127.0.0.1:{botapi}/bot", base_file_url=f"http://127.0.0.1:{botapi}/file/bot"),
    )
    settings = Settings(database_url=env["FAULTS_DATABASE_URL"], data_dir=Path(env["FAULTS_DATA_DIR"]),
                        log_level="WARNING", log_json=False, redis_url=env.get("FAULTS_REDIS_URL") or None,
                        channels=channels, workers_enabled=env.get("FAULTS_WORKERS") != "0")
    if env.get("FAULTS_TRACE_FILE"):
        trace_outbox(env["FAULTS_TRACE_FILE"])
    return create_app(settings, nlu_engine=KeywordEngine({k: list(v) for k, v in KEYWORDS.items()}),
                      responses=lambda intent, lang: ANSWERS.get((intent, lang)), configure_logs=False,
                      freeze_heap=True)  # as `switchboard serve` runs it: no 90 ms collector pauses mid-request


# -- the outbox's trace (FAULTS_TRACE=1): what each kill -9 interrupted ------------------------------------
#
# The server appends one line per event to a file (one unbuffered write each: a kill -9 loses none of them):
#   S <t> <outbox id> <recipient>   a send went on the wire (past the dispatcher's concurrency limit)
#   R <t> <outbox id>               its response was back in the dispatcher (the channel's send returned)
#   C <t> <outbox id>               its delivery was committed (service.mark_sent returned: an autocommit UPDATE)
#   L <t> <lag>                     the event loop ran a 5 ms timer `lag` seconds late
# Times are time.monotonic() (CLOCK_MONOTONIC: one clock for the server and this script). It measures the code it
# runs in, whichever checkout that is (`--server-root`): it wraps the channel senders and service.mark_sent.


def trace_outbox(path: str) -> None:
    """Patch the outbox dispatcher of this process to write the trace above to `path`."""
    import functools

    from core.outbox import dispatcher as dispatcher_module

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(line: str) -> None:
        os.write(fd, line.encode())

    class Traced:
        def __init__(self, sender: Any) -> None:
            self.sender = sender

        async def send(self, envelope: Any) -> Any:
            write(f"S {time.monotonic():.6f} {envelope.outbox_id} {envelope.recipient}\n")
            try:
                return await self.sender.send(envelope)
            finally:
                write(f"R {time.monotonic():.6f} {envelope.outbox_id}\n")

    def committed(ids: list[int]) -> None:
        now = time.monotonic()
        write("".join(f"C {now:.6f} {i}\n" for i in ids))

    async def lag_probe() -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.005)
            write(f"L {time.monotonic():.6f} {time.monotonic() - start - 0.005:.6f}\n")

    cls = dispatcher_module.OutboxDispatcher
    init = cls.__init__

    @functools.wraps(init)
    def traced_init(self: Any, sessionmaker: Any, senders: Any, *args: Any, **kwargs: Any) -> None:
        def traced(kind: str) -> Any:
            sender = senders(kind)
            return None if sender is None else Traced(sender)
        init(self, sessionmaker, traced, *args, **kwargs)
        self._trace_probe = asyncio.get_running_loop().create_task(lag_probe())

    cls.__init__ = traced_init  # type: ignore[method-assign]
    # Deliveries are recorded by service.mark_sent, in an autocommitting UPDATE (before and after the recorder):
    # when it returns, they are committed.
    from core.outbox import service

    mark_sent = service.mark_sent

    @functools.wraps(mark_sent)
    async def traced_mark_sent(session: Any, sent: Any) -> None:
        await mark_sent(session, sent)
        committed([e.outbox_id for e, _ in sent])

    service.mark_sent = traced_mark_sent


@dataclass
class TraceEvents:
    sends: dict[int, float] = field(default_factory=dict)  # first S of a kill's interval
    responses: dict[int, float] = field(default_factory=dict)
    commits: dict[int, float] = field(default_factory=dict)
    recipients: dict[int, str] = field(default_factory=dict)
    lags: list[tuple[float, float]] = field(default_factory=list)


def read_trace(path: Path, start: float, end: float) -> TraceEvents:
    """The events of the trace between two moments (one server process's life: a kill and the next)."""
    events = TraceEvents()
    if not path.exists():
        return events
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue  # a line cut by the kill
        kind, t = parts[0], float(parts[1])
        if not start <= t < end:
            continue
        if kind == "L":
            events.lags.append((t, float(parts[2])))
            continue
        outbox_id = int(parts[2])
        if kind == "S":
            events.sends.setdefault(outbox_id, t)
            if len(parts) > 3:
                events.recipients[outbox_id] = parts[3]
        elif kind == "R":
            events.responses.setdefault(outbox_id, t)
        elif kind == "C":
            events.commits.setdefault(outbox_id, t)
    return events


def quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    pick = [values[min(len(values) - 1, int(q * len(values)))] for q in (0.5, 0.9, 0.99)]
    return "/".join(f"{v * 1000:.0f}" for v in pick)


def kill_report(trace: Path, kills: list[float], received_at: Callable[[int, str], float | None]) -> str:
    """Per kill: what the dead process had on the wire and unrecorded, and what the receiver already had.

    in flight: sends past the concurrency limit whose response the dispatcher had not got (`rcv`: of those, the
    receiver had them: each one is a reply delivered twice); unrecorded: responses back in the dispatcher, outcome
    not committed (all were with the receiver: each is a reply delivered twice). Rate: replies committed in the
    last second; lag: event-loop lag in the last 2 s, p50/p90/p99 ms; resp->commit and recv->commit over the life
    of the process, p50/p90/p99 ms."""
    lines = ["| kill | life s | rate/s | in flight | of which rcv | unrecorded | dup total | loop lag ms "
             "| resp->commit ms | recv->commit ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    previous = 0.0
    totals = Counter[str]()
    for n, kill in enumerate(sorted(kills), 1):
        ev = read_trace(trace, previous, kill)
        in_flight = [i for i, t in ev.sends.items() if i not in ev.responses]
        rcv = [i for i in in_flight if (r := received_at(i, ev.recipients.get(i, ""))) is not None and r < kill]
        unrecorded = [i for i in ev.responses if i not in ev.commits]
        rate = sum(1 for t in ev.commits.values() if t >= kill - 1.0)
        lags = [lag for t, lag in ev.lags if t >= kill - 2.0]
        resp_commit = [ev.commits[i] - ev.responses[i] for i in ev.commits if i in ev.responses]
        recv_commit = [ev.commits[i] - r for i in ev.commits
                       if (r := received_at(i, ev.recipients.get(i, ""))) is not None]
        life = kill - (min(t for t, _ in ev.lags) if ev.lags else previous)
        totals.update({"in flight": len(in_flight), "rcv": len(rcv), "unrecorded": len(unrecorded)})
        lines.append(f"| {n} | {life:.1f} | {rate} | {len(in_flight)} | {len(rcv)} | {len(unrecorded)} "
                     f"| {len(rcv) + len(unrecorded)} | {quantiles(lags)} | {quantiles(resp_commit)} "
                     f"| {quantiles(recv_commit)} |")
        previous = kill
    lines.append(f"| all | | | {totals['in flight']} | {totals['rcv']} | {totals['unrecorded']} "
                 f"| {totals['rcv'] + totals['unrecorded']} | | | |")
    return "\n".join(lines)


def answer_to_commit(trace: Path) -> str:
    """Over the whole trace: the time from a send's answer to its committed record, p50/p90/p99 ms (what a kill
    resends is the delivery rate times this), and the replies committed per second of delivery."""
    ev = read_trace(trace, 0.0, float("inf"))
    waits = [ev.commits[i] - ev.responses[i] for i in ev.commits if i in ev.responses]
    commits = sorted(ev.commits.values())
    pace = f", {(len(commits) - 1) / (commits[-1] - commits[0]):.1f} committed/s" if len(commits) > 1 else ""
    return f"answer->commit p50/p90/p99 {quantiles(waits)} ms over {len(waits)}{pace}"


class Server:
    """One instance of the app in its own process, on a port it keeps across restarts."""

    def __init__(self, ctx: Context, database_url: str, **env: str) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.data_dir = ctx.workdir / f"data-{self.port}"
        self.data_dir.mkdir()
        self.env = {**os.environ, "PYTHONPATH": str(ctx.server_root), "FAULTS_DATABASE_URL": database_url,
                    "FAULTS_DATA_DIR": str(self.data_dir), **env}
        self.trace: Path | None = None
        if os.environ.get("FAULTS_TRACE"):
            self.trace = ctx.workdir / f"trace-{self.port}.txt"
            self.env["FAULTS_TRACE_FILE"] = str(self.trace)
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.killed_at: list[float] = []

    def start(self) -> None:
        log = (self.ctx.workdir / f"server-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.faults:fault_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            cwd=self.ctx.server_root, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        log.close()

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup, whatever was in flight stays in flight."""
        if self.proc is not None:
            self.killed_at.append(time.monotonic())
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def ready(self, within: float = 180.0, channel: str | None = None) -> None:
        """Wait until /health answers (and `channel` is connected)."""
        import httpx

        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = (await client.get(f"http://127.0.0.1:{self.port}/health")).json()
                    if health.get("database", {}).get("state") == "ok" and (
                            channel is None or health["channels"].get(channel, {}).get("state") == "connected"):
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"server not ready in {within:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.ctx.workdir / f"server-{self.port}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


class HttpReceiver:
    """A tiny HTTP/1.1 server (raw asyncio: it shares the load generator's CPU) answering 200 to every POST."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                path = line.split()[1].decode()
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    key, _, value = h.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                payload = json.dumps(self.answer(path, headers, body)).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(payload), payload))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, IndexError):
            pass
        finally:
            writer.close()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        return {}


class WebhookReceiver(HttpReceiver):
    """The integrator's webhook for REST replies: counts each X-Switchboard-Delivery id."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: Counter[int] = Counter()
        self.first_at: dict[int, float] = {}

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        delivery = int(headers["x-switchboard-delivery"])
        self.deliveries[delivery] += 1
        self.first_at.setdefault(delivery, time.monotonic())
        return {}


class BotApiStandIn(HttpReceiver):
    """Telegram's Bot API as the bot sees it: counts sendMessage per chat."""

    BOT: ClassVar[dict[str, Any]] = {"id": 123456, "is_bot": True, "first_name": "Faults", "username": "faults_bot"}

    def __init__(self) -> None:
        super().__init__()
        self.per_chat: Counter[int] = Counter()
        self.first_at: dict[int, float] = {}
        self.sent = 0

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        import urllib.parse

        method = path.rsplit("/", 1)[-1]
        if method == "getMe":
            return {"ok": True, "result": self.BOT}
        if method == "sendMessage":
            if headers.get("content-type", "").startswith("application/json"):
                form = {k: str(v) for k, v in json.loads(body or b"{}").items()}
            else:
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            chat = int(form.get("chat_id", "0"))
            self.per_chat[chat] += 1
            self.first_at.setdefault(chat, time.monotonic())
            self.sent += 1
            return {"ok": True, "result": {"message_id": self.sent, "date": int(time.time()), "from": self.BOT,
                                           "text": form.get("text", ""), "chat": {"id": chat, "type": "private"}}}
        return {"ok": True, "result": True}


# -- traffic ----------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    """What the clients tried and what the servers acknowledged, by the message's own id."""

    attempted: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    last_ack: float = field(default_factory=time.monotonic)
    answers: Counter[str] = field(default_factory=Counter)  # status codes and client-side errors, for the notes

    def ack(self, key: str) -> None:
        self.acked.add(key)
        self.last_ack = time.monotonic()

    def stalled(self, seconds: float) -> bool:
        """Nothing acknowledged for `seconds`: the clients give up (what they gave up on is not acknowledged)."""
        return time.monotonic() - self.last_ack > seconds


async def send_all(ports: Callable[[int], int], path: str, bodies: list[tuple[str, bytes]], headers: dict[str, str],
                   rate: float, traffic: Traffic, give_up_after: float, connections: int = 16) -> None:
    """Offer `bodies` ((id, body)) at `rate`/s over keep-alive connections; each is sent again (same id) until it
    is acknowledged, as a client that got no answer does (giving up only when nothing at all has been
    acknowledged for `give_up_after` seconds); `ports(i)` picks the instance of message i."""
    queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue()

    async def worker() -> None:
        conns: dict[int, Conn] = {}
        while True:
            i, key, body = await queue.get()
            port = ports(i)
            while not traffic.stalled(give_up_after):
                try:
                    if port not in conns:
                        conns[port] = await Conn.open(port)
                    async with asyncio.timeout(30):
                        status = await conns[port].post(path, body, headers)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError) as exc:
                    traffic.answers[type(exc).__name__] += 1
                    stale = conns.pop(port, None)
                    if stale is not None:
                        stale.close()
                    await asyncio.sleep(0.1)
                    continue
                traffic.answers[str(status)] += 1
                if 200 <= status < 300:
                    traffic.ack(key)
                    break
                if 400 <= status < 500 and status != 429:
                    print(f"  {path}: {status} for {key} (not retried)", file=sys.stderr)
                    break
                await asyncio.sleep(0.1)  # 503 while a dependency is down: the same message again
            queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.monotonic()
    for i, (key, body) in enumerate(bodies):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        traffic.attempted.add(key)
        queue.put_nowait((i, key, body))
    await queue.join()
    for task in workers:
        task.cancel()
    traffic.done.set()


def rest_bodies(run: str, n: int) -> list[tuple[str, bytes]]:
    # A conversation of its own for each message: every one gets exactly one bot answer.
    return [(f"{run}-{i}", json.dumps({"external_message_id": f"{run}-{i}", "thread_id": f"{run}-t{i}",
                                       "sender": {"external_id": f"{run}-c{i}"}, "text": "hello"}).encode())
            for i in range(n)]


REST_HEADERS = {"Content-Type": "application/json", "X-Api-Key": API_KEY}


def telegram_bodies(first_chat: int, n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        chat = first_chat + i
        out.append((f"{chat}:1", json.dumps({"update_id": chat, "message": {
            "message_id": 1, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "Fault", "language_code": "en"},
            "text": "hello"}}).encode()))
    return out


TELEGRAM_HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}


async def kill_every(servers: list[Server], every: float, done: asyncio.Event, channel: str | None = None,
                     most: int = 1000) -> None:
    """kill -9 the servers in turn every `every` seconds of service, restarting each at once, until `done` (or
    `most` kills)."""
    turn = 0
    while not done.is_set() and turn < most:
        for server in servers:
            await server.ready(channel=channel)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await done.wait()
        if done.is_set():
            break
        victim = servers[turn % len(servers)]
        turn += 1
        victim.kill()
        victim.start()


# -- counting ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[Any]:
    from core.db.session import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def drain(url: str, channel: str, seconds: float) -> None:
    """Wait until no reply of `channel` is queued or being sent (or `seconds` pass: those count as stuck)."""
    from sqlalchemy import text

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            async with database(url) as conn:
                waiting = (await conn.execute(text(
                    "SELECT count(*) FROM outbox WHERE channel = :c AND status IN ('queued', 'sending')"),
                    {"c": channel})).scalar_one()
            if waiting == 0:
                return
        await asyncio.sleep(0.5)


async def stored(url: str, channel: str) -> tuple[Counter[str], dict[int, tuple[str, str]]]:
    """Inbound messages by external id, and outbound rows {outbox id: (status, recipient)}, of one channel."""
    from sqlalchemy import text

    async with database(url) as conn:
        inbound = Counter({k: int(n) for k, n in (await conn.execute(text(
            "SELECT external_message_id, count(*) FROM messages WHERE channel = :c AND direction = 'inbound' "
            "GROUP BY external_message_id"), {"c": channel})).all()})
        outbox = {int(i): (str(s), str(r)) for i, s, r in (await conn.execute(text(
            "SELECT id, status, recipient FROM outbox WHERE channel = :c"), {"c": channel})).all()}
    return inbound, outbox


def inbound_counts(row: Row, traffic: Traffic, inbound: Counter[str]) -> None:
    row.sent = len(traffic.attempted)
    row.acknowledged = len(traffic.acked)
    row.stored_once = sum(1 for k in traffic.acked if inbound.get(k, 0) == 1)
    row.lost = sum(1 for k in traffic.acked if inbound.get(k, 0) == 0)
    row.stored_twice = sum(1 for n in inbound.values() if n > 1)


def rest_reply_counts(row: Row, outbox: dict[int, tuple[str, str]], receiver: WebhookReceiver) -> None:
    row.replies_expected = len(outbox)
    row.delivered = sum(1 for i in outbox if receiver.deliveries.get(i))
    row.delivered_twice = sum(1 for i in outbox if receiver.deliveries.get(i, 0) > 1)
    row.stuck = sum(1 for status, _ in outbox.values() if status != "sent")


def telegram_reply_counts(row: Row, outbox: dict[int, tuple[str, str]], botapi: BotApiStandIn) -> None:
    # The Bot API knows chats, not outbox ids: a chat that got more answers than were queued for it got repeats.
    expected = Counter(int(recipient) for _, recipient in outbox.values())
    row.replies_expected = len(outbox)
    row.delivered = sum(min(n, botapi.per_chat.get(chat, 0)) for chat, n in expected.items())
    row.delivered_twice = sum(max(0, botapi.per_chat.get(chat, 0) - n) for chat, n in expected.items())
    row.stuck = sum(1 for status, _ in outbox.values() if status != "sent")


# -- scenarios --------------------------------------------------------------------------------------------


async def rest_run(ctx: Context, name: str, servers_count: int, fault: Callable[[list[Server], Traffic],
                   Awaitable[tuple[int, str]]], **env: str) -> Row:
    """REST traffic to `servers_count` instances with replies to a local webhook, while `fault` runs (and
    returns how many faults it caused, and a note)."""
    receiver = WebhookReceiver()
    await receiver.start()
    url = await ctx.database()
    servers = [Server(ctx, url, FAULTS_WEBHOOK_URL=f"http://127.0.0.1:{receiver.port}/hook", **env)
               for _ in range(servers_count)]
    row = Row(name)
    try:
        for server in servers:
            server.start()
        for server in servers:
            await server.ready()
        traffic = Traffic()
        ports = [s.port for s in servers]
        load = asyncio.create_task(send_all(lambda i: ports[i % len(ports)], "/channels/rest/messages",
                                            rest_bodies(name, ctx.mode.messages), REST_HEADERS, ctx.mode.rate,
                                            traffic, give_up_after=ctx.mode.settle_seconds))
        row.faults, row.notes = await fault(servers, traffic)
        await load
        print(f"  client saw: {dict(traffic.answers)}; last ack {time.monotonic() - traffic.last_ack:.0f} s ago",
              file=sys.stderr)
        for server in servers:
            await server.ready()
        await drain(url, "rest", ctx.mode.settle_seconds)
        inbound, outbox = await stored(url, "rest")
        inbound_counts(row, traffic, inbound)
        rest_reply_counts(row, outbox, receiver)
        for server in servers:
            if server.trace is not None:
                print(f"  {name}, what each kill interrupted (server {server.port}):\n"
                      + kill_report(server.trace, server.killed_at, lambda i, _: receiver.first_at.get(i)),
                      file=sys.stderr)
                row.notes = (row.notes + "; " if row.notes else "") + answer_to_commit(server.trace)
        if os.environ.get("FAULTS_DEBUG"):
            kills = sorted(t for s in servers for t in s.killed_at)
            for i, n in receiver.deliveries.items():
                if n > 1:
                    first = receiver.first_at[i]
                    before = [first - k for k in kills if k >= first - 5]
                    print(f"  dup {i}: first delivered {min(before, key=abs) if before else None!r} s from a kill",
                          file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
        await receiver.stop()
    return row


async def rest_throughput(ctx: Context) -> Row:
    """The outbox's pace, without faults: `messages` REST messages are ingested by an instance without background
    workers (their replies wait, queued), then an instance with workers starts and delivers them to the local
    webhook; notes how many replies per second the receiver got, first delivery to last. Not a registered
    scenario (`--throughput`): it proves no invariant, it measures."""
    receiver = WebhookReceiver()
    await receiver.start()
    url = await ctx.database()
    row = Row("rest: throughput")
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    ingesting = Server(ctx, url, FAULTS_WEBHOOK_URL=hook, FAULTS_WORKERS="0")
    try:
        ingesting.start()
        await ingesting.ready()
        traffic = Traffic()
        await send_all(lambda i: ingesting.port, "/channels/rest/messages", rest_bodies("pace", ctx.mode.messages),
                       REST_HEADERS, ctx.mode.rate, traffic, give_up_after=ctx.mode.settle_seconds)
        ingesting.stop()
        delivering = Server(ctx, url, FAULTS_WEBHOOK_URL=hook)
        try:
            delivering.start()
            await drain(url, "rest", ctx.mode.settle_seconds * 4)
        finally:
            delivering.stop()
        inbound, outbox = await stored(url, "rest")
        inbound_counts(row, traffic, inbound)
        rest_reply_counts(row, outbox, receiver)
        times = sorted(receiver.first_at.values())
        if len(times) > 1:
            row.notes = (f"{(len(times) - 1) / (times[-1] - times[0]):.0f} replies delivered/s "
                         f"({len(times)} in {times[-1] - times[0]:.1f} s)")
    finally:
        ingesting.stop()
        await receiver.stop()
    return row


async def rest_window(ctx: Context) -> Row:
    """REST traffic with no fault, traced (FAULTS_TRACE=1): the answer-to-commit time each kill would multiply by the
    delivery rate, measured without the restarts that dominate a kill run on a loaded machine. Not a registered
    scenario (`--window`): it proves no invariant, it measures."""
    async def no_fault(servers: list[Server], traffic: Traffic) -> tuple[int, str]:
        await traffic.done.wait()
        return 0, "no fault"

    return await rest_run(ctx, "rest: answer->commit", 1, no_fault)


@scenario("rest: kill -9")
async def rest_kill9(ctx: Context) -> Row:
    async def fault(servers: list[Server], traffic: Traffic) -> tuple[int, str]:
        await kill_every(servers, ctx.mode.kill_every, traffic.done, most=ctx.mode.max_kills)
        return sum(s.kills for s in servers), "kill -9"

    return await rest_run(ctx, "rest: kill -9", 1, fault)


@scenario("telegram webhook: kill -9")
async def telegram_kill9(ctx: Context) -> Row:
    botapi = BotApiStandIn()
    await botapi.start()
    url = await ctx.database()
    server = Server(ctx, url, FAULTS_BOTAPI_PORT=str(botapi.port))
    row = Row("telegram webhook: kill -9")
    try:
        server.start()
        await server.ready(channel="telegram")
        traffic = Traffic()
        load = asyncio.create_task(send_all(lambda i: server.port, "/channels/telegram/webhook",
                                            telegram_bodies(1_000_000, ctx.mode.messages), TELEGRAM_HEADERS,
                                            ctx.mode.rate, traffic, give_up_after=ctx.mode.settle_seconds))
        await kill_every([server], ctx.mode.kill_every, traffic.done, channel="telegram", most=ctx.mode.max_kills)
        await load
        await server.ready(channel="telegram")
        await drain(url, "telegram", ctx.mode.settle_seconds)
        inbound, outbox = await stored(url, "telegram")
        inbound_counts(row, traffic, inbound)
        telegram_reply_counts(row, outbox, botapi)
        if server.trace is not None:
            print("  telegram webhook, what each kill interrupted:\n" + kill_report(
                server.trace, server.killed_at, lambda _, chat: botapi.first_at.get(int(chat)) if chat else None),
                file=sys.stderr)
        row.faults, row.notes = server.kills, "kill -9"
    finally:
        server.stop()
        await botapi.stop()
    return row


@dataclass
class ChatTally:
    """What the web-chat visitors saw: bot messages pushed live (by id, counted) and found in history."""

    live: Counter[int] = field(default_factory=Counter)
    history: set[int] = field(default_factory=set)


async def chat_visitor(port: int, i: int, traffic: Traffic, tally: ChatTally, deadline: float) -> None:
    """One visitor: says hello and waits for the bot; after a dropped socket, comes back with its session token
    and, if the message was not acknowledged, sends it again with the same client id."""
    import websockets

    token: str | None = None
    key: str | None = None
    acked = answered = False
    while not (acked and answered) and time.monotonic() < deadline:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/channels/webchat/ws", open_timeout=30,
                                          ping_interval=None) as ws:
                await ws.send(json.dumps({"type": "auth", "lang": "en", **({"token": token} if token else {})}))
                async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame["type"] == "ready":
                            token = frame.get("session_token") or token
                            key = f"{frame['visitor_id']}:hello-{i}"
                        elif frame["type"] == "history":
                            for message in frame.get("messages", []):
                                if message.get("author") == "bot":
                                    tally.history.add(int(message["id"]))
                                    answered = True
                            if not acked and key is not None:
                                traffic.attempted.add(key)
                                await ws.send(json.dumps({"type": "message", "client_id": f"hello-{i}",
                                                          "text": "hello"}))
                        elif frame["type"] == "ack" and key is not None:
                            acked = True
                            traffic.ack(key)
                        elif frame["type"] == "message" and frame.get("author") == "bot":
                            tally.live[int(frame["id"])] += 1
                            answered = True
                        if acked and answered:
                            break
        except (OSError, TimeoutError, websockets.WebSocketException, ValueError, KeyError):
            await asyncio.sleep(0.2)


@scenario("web chat: kill -9")
async def webchat_kill9(ctx: Context) -> Row:
    from sqlalchemy import text

    url = await ctx.database()
    server = Server(ctx, url)
    row = Row("web chat: kill -9")
    count, rate = max(120, ctx.mode.messages // 3), ctx.mode.rate / 2
    traffic, tally = Traffic(), ChatTally()
    try:
        server.start()
        await server.ready()

        async def visitors() -> None:
            start = time.monotonic()
            deadline = start + count / rate + 2 * ctx.mode.settle_seconds
            tasks = []
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                tasks.append(asyncio.create_task(chat_visitor(server.port, i, traffic, tally, deadline)))
            await asyncio.gather(*tasks)
            traffic.done.set()

        load = asyncio.create_task(visitors())
        await kill_every([server], ctx.mode.kill_every, traffic.done, most=ctx.mode.max_kills)
        await load
        await server.ready()
        await drain(url, "webchat", ctx.mode.settle_seconds)
        inbound, outbox = await stored(url, "webchat")
        inbound_counts(row, traffic, inbound)
        async with database(url) as conn:
            message_of = {int(o): int(m) for o, m in (await conn.execute(text(
                "SELECT id, message_id FROM outbox WHERE channel = 'webchat'"))).all()}
        seen = set(tally.live) | tally.history
        row.replies_expected = len(outbox)
        row.delivered = sum(1 for o in outbox if message_of[o] in seen)
        row.delivered_twice = sum(1 for o in outbox if tally.live.get(message_of[o], 0) > 1)
        row.stuck = sum(1 for status, _ in outbox.values() if status != "sent")
        row.faults, row.notes = server.kills, "kill -9"
    finally:
        server.stop()
    return row


@scenario("postgresql: stop and start")
async def postgres_stop(ctx: Context) -> Row:
    async def fault(servers: list[Server], traffic: Traffic) -> tuple[int, str]:
        # Halfway through the traffic, the database goes away for a while and comes back.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ctx.mode.messages / ctx.mode.rate / 2):
                await traffic.done.wait()
        started = time.monotonic()
        await asyncio.to_thread(ctx.cluster.stop, "fast")
        await asyncio.sleep(ctx.mode.outage_seconds)  # the outage itself: a fixed length is the point
        await asyncio.to_thread(ctx.cluster.start)
        return 1, f"database down {time.monotonic() - started:.0f} s"

    return await rest_run(ctx, "postgresql: stop and start", 2, fault)


class PrivateRedis:
    """A redis-server of our own on a free port (never the machine's shared one), killed and started at will."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


@scenario("redis: down, two instances")
async def redis_down(ctx: Context) -> Row:
    redis = PrivateRedis(ctx.workdir)
    redis.start()

    async def fault(servers: list[Server], traffic: Traffic) -> tuple[int, str]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ctx.mode.messages / ctx.mode.rate / 3):
                await traffic.done.wait()
        started = time.monotonic()
        redis.kill()
        await asyncio.sleep(ctx.mode.outage_seconds)  # the outage itself
        redis.start()
        return 1, f"redis down {time.monotonic() - started:.0f} s"

    try:
        return await rest_run(ctx, "redis: down, two instances", 2, fault,
                              FAULTS_REDIS_URL=f"redis://127.0.0.1:{redis.port}/0")
    finally:
        redis.kill()


class MailServers:
    """A private Dovecot (the tests' set-up) and an aiosmtpd server, each stopped and started again in place."""

    def __init__(self) -> None:
        from tests.channels.email.conftest import SmtpSink, start_dovecot

        self.dovecot = start_dovecot()
        self.user = self.dovecot.add_user()
        self.sink = SmtpSink(host="127.0.0.1", port=free_port())
        self.smtp: Any = None
        self.start_smtp()

    def start_smtp(self) -> None:
        from aiosmtpd.controller import Controller

        self.smtp = Controller(self.sink, hostname=self.sink.host, port=self.sink.port)
        self.smtp.start()

    def stop(self) -> None:
        self.dovecot.process.terminate()
        self.dovecot.process.wait(timeout=30)
        self.smtp.stop()

    def start(self) -> None:
        from tests.channels.email.conftest import DOVECOT, _wait_for_port

        self.dovecot.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.dovecot.root / "dovecot.conf")],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.dovecot.port, self.dovecot.process, timeout=60)
        self.start_smtp()

    def close(self) -> None:
        from tests.channels.email.conftest import stop_dovecot

        with contextlib.suppress(Exception):
            self.smtp.stop()
        stop_dovecot(self.dovecot)

    def replies_by_outbox_id(self) -> Counter[int]:
        """Mails the SMTP server accepted, by the outbox id in their Message-ID (sb.<stamp>.<msg>.<outbox>@...)."""
        out: Counter[int] = Counter()
        for message in self.sink.parsed():
            mid = (message["Message-ID"] or "").strip("<> ")
            with contextlib.suppress(ValueError, IndexError):
                out[int(mid.split("@")[0].split(".")[-1])] += 1
        return out


def mail(run: str, i: int) -> tuple[str, bytes]:
    mid = f"faults-{run}-{i}@example.org"
    raw = (f"From: Customer {i} <customer{i}.{run}@example.org>\nTo: support@support.example\n"
           f"Subject: Question {i}\nDate: Sun, 29 Nov 2026 10:00:00 +0000\nMessage-ID: <{mid}>\n"
           f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nhello\n")
    return mid, raw.replace("\n", "\r\n").encode()


@scenario("email: dovecot and smtp down")
async def mail_down(ctx: Context) -> Row:
    from tests.channels.email.conftest import PASSWORD

    servers = await asyncio.to_thread(MailServers)
    url = await ctx.database()
    server = Server(ctx, url, FAULTS_IMAP_PORT=str(servers.dovecot.port), FAULTS_IMAP_USER=servers.user,
                    FAULTS_IMAP_PASSWORD=PASSWORD, FAULTS_SMTP_PORT=str(servers.sink.port))
    row = Row("email: dovecot and smtp down")
    count, rate = max(30, ctx.mode.messages // 6), max(5.0, ctx.mode.rate / 5)
    traffic = Traffic()
    mails = [mail(f"{os.getpid()}", i) for i in range(count)]
    down = asyncio.Event()

    async def deliver() -> None:
        # The customers' mail server: appends each mail to the mailbox, again and again while Dovecot is away.
        start = time.monotonic()
        for i, (mid, raw) in enumerate(mails):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            traffic.attempted.add(mid)
            while True:
                if not down.is_set():
                    try:
                        await servers.dovecot.append(servers.user, raw)
                        traffic.ack(mid)
                        break
                    except Exception:  # noqa: S110 - the server went down under us: try again
                        pass
                await asyncio.sleep(0.2)
        traffic.done.set()

    try:
        server.start()
        await server.ready()
        load = asyncio.create_task(deliver())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(count / rate / 3):
                await traffic.done.wait()
        started = time.monotonic()
        down.set()
        await asyncio.to_thread(servers.stop)
        await asyncio.sleep(ctx.mode.mail_outage_seconds)  # the outage itself
        await asyncio.to_thread(servers.start)
        down.clear()
        row.faults, row.notes = 1, f"mail servers down {time.monotonic() - started:.0f} s"
        await load
        # Mail is read when the reader reconnects (backoff up to 2 s) and polls: wait for every acknowledged one.
        deadline = time.monotonic() + ctx.mode.settle_seconds
        while time.monotonic() < deadline:
            inbound, _ = await stored(url, "email")
            if sum(1 for k in traffic.acked if inbound.get(f"<{k}>", 0) + inbound.get(k, 0)) == len(traffic.acked):
                break
            await asyncio.sleep(0.5)
        await drain(url, "email", ctx.mode.settle_seconds)
        inbound, outbox = await stored(url, "email")
        inbound = Counter({k.strip("<>"): n for k, n in inbound.items()})
        inbound_counts(row, traffic, inbound)
        replies = servers.replies_by_outbox_id()
        row.replies_expected = len(outbox)
        row.delivered = sum(1 for i in outbox if replies.get(i))
        row.delivered_twice = sum(1 for i in outbox if replies.get(i, 0) > 1)
        row.stuck = sum(1 for status, _ in outbox.values() if status != "sent")
    finally:
        server.stop()
        await asyncio.to_thread(servers.close)
    return row


# -- running ----------------------------------------------------------------------------------------------


COLUMNS = [("scenario", "scenario"), ("faults", "faults"), ("sent", "sent"), ("acknowledged", "acknowledged"),
           ("stored_once", "stored once"), ("lost", "lost"), ("stored_twice", "stored twice"),
           ("replies_expected", "replies expected"), ("delivered", "delivered"),
           ("delivered_twice", "delivered twice"), ("stuck", "stuck"), ("notes", "notes")]


def table(rows: list[Row]) -> str:
    cells = [[label for _, label in COLUMNS]] + [[str(getattr(r, key)) for key, _ in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells[1:]]
    return "\n".join(lines)


async def run(mode: Mode, only: list[str], server_root: Path, throughput: bool = False,
              window: bool = False) -> list[Row]:
    workdir = Path(tempfile.mkdtemp(prefix="sb-faults-"))
    cluster = PrivateCluster(workdir)
    rows: list[Row] = []
    try:
        await asyncio.to_thread(cluster.init)
        ctx = Context(mode=mode, workdir=workdir, server_root=server_root, cluster=cluster)
        if throughput:
            print("  running rest: throughput...", file=sys.stderr, flush=True)
            return [await rest_throughput(ctx)]
        if window:
            os.environ["FAULTS_TRACE"] = "1"
            print("  running rest: answer->commit...", file=sys.stderr, flush=True)
            return [await rest_window(ctx)]
        for name, fn in SCENARIOS.items():
            if only and not any(o in name for o in only):
                continue
            print(f"  running {name} ({mode.name})...", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                row = await fn(ctx)
            except Exception as exc:
                row = Row(name, notes=f"ERROR {type(exc).__name__}: {str(exc)[:300]}")
            row.notes = (row.notes + "; " if row.notes else "") + f"{time.monotonic() - started:.0f} s"
            rows.append(row)
            print(f"  {asdict(row)}", file=sys.stderr, flush=True)
    finally:
        await asyncio.to_thread(cluster.destroy)
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


LIVE_SCENARIO = "redis: live delivery, three instances"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI version: seconds per scenario")
    parser.add_argument("--only", nargs="*", default=[], help="run the scenarios whose name contains one of these")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--messages", type=int, help="messages per traffic scenario (overrides the mode)")
    parser.add_argument("--kill-every", type=float, help="seconds of service between two kill -9")
    parser.add_argument("--rate", type=float, help="messages per second offered (overrides the mode)")
    parser.add_argument("--throughput", action="store_true",
                        help="instead of the scenarios: the outbox's pace without faults (REST replies queued by an "
                             "instance without workers, then delivered by one with them: replies delivered/s)")
    parser.add_argument("--window", action="store_true",
                        help="instead of the scenarios: REST traffic with no fault, traced: the time from a "
                             "receiver's answer to the committed record (what each kill resends is rate x this)")
    parser.add_argument("--no-live", action="store_true",
                        help="skip the live-delivery scenario (bench/faults_redis.py: three instances through a "
                             "Redis outage, its own table; tests/api/test_redis_outage.py covers it in CI)")
    parser.add_argument("--server-root", type=Path, default=ROOT,
                        help="run the server from this checkout (bench/faults.py is copied in when missing)")
    args = parser.parse_args()
    server_root = args.server_root.resolve()
    if not (server_root / "bench" / "faults.py").exists():
        shutil.copy(Path(__file__), server_root / "bench" / "faults.py")
    mode = SHORT if args.short else FULL
    if args.messages:
        mode = dataclasses.replace(mode, messages=args.messages)
    if args.kill_every:
        mode = dataclasses.replace(mode, kill_every=args.kill_every)
    if args.rate:
        mode = dataclasses.replace(mode, rate=args.rate)
    rows = asyncio.run(run(mode, args.only, server_root, throughput=args.throughput, window=args.window))
    print(table(rows))
    if args.throughput or args.window:
        return
    problems = {r.scenario: r.problems() for r in rows if r.problems() or r.notes.startswith("ERROR")}
    if not args.no_live and (not args.only or any(o in LIVE_SCENARIO for o in args.only)):
        # Live delivery has other columns (shown live, caught up, never shown): a table of its own.
        from bench import faults_redis

        print(f"\n{LIVE_SCENARIO}")
        live = faults_redis.run(args.short)
        faults_redis.print_row(live)
        if live["never_shown"]:
            problems[LIVE_SCENARIO] = [f"never shown {live['never_shown']}/{live['sent']}"]
    for name, found in problems.items():
        print(f"MISSED {name}: {', '.join(found) or 'error'}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
