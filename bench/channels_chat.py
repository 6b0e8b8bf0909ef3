"""Chat channels benchmark: Telegram webhook, VK Callback API and WhatsApp webhook throughput, web-chat round trip,
concurrent web-chat sockets.

    python bench/channels_chat.py [--updates 3000] [--sockets 1000] [--messages 2000] [--rate 100]
                                  [--max-sockets 10000] [--database-url URL] [--workers 1]

The server (the whole app on uvicorn, SQLite unless --database-url, --workers processes) runs apart; this process is the
load generator and the Bot API (and VK API, Graph API) stand-in that receives the bot's answers. Everything is on
127.0.0.1 and bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Conn, analyze, memory_mb  # noqa: E402 - after the path is set
from tests.support.net import free_port  # noqa: E402

TOKEN = "123456:BENCH"  # noqa: S105 - a fake bot token for the local stand-in
SECRET = "bench-secret"  # noqa: S105
VK_GROUP = 227000001
VK_TOKEN = "vk1.a.bench"  # noqa: S105
WA_PHONE = "106540352242922"
KEYWORDS = {"greeting": ["hello", "привет"], "human_handoff": ["operator"], "internet_down": ["internet"]}
ANSWERS = {("greeting", "en"): "Hello! How can I help?", ("greeting", "ru"): "Здравствуйте! Чем помочь?"}


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bench_app() -> Any:
    """The app under test (a uvicorn factory, so it can run in several worker processes); set up by env."""
    from pydantic import SecretStr

    from api.app import create_app
    from api.settings import Settings
    from channels.config import ChannelsSettings
    from channels.telegram.settings import TelegramChannelSettings
    from channels.vk.settings import VkChannelSettings
    from channels.webchat.settings import WebchatChannelSettings
    from channels.whatsapp.settings import WhatsappChannelSettings
    from nlu.protocol import KeywordEngine

    raise_fd_limit()
    base = f"http://127.0.0.1:{os.environ['BENCH_BOTAPI_PORT']}"
    settings = Settings(
        database_url=os.environ["BENCH_DATABASE_URL"], data_dir=Path(os.environ["BENCH_DATA_DIR"]),
        log_level="WARNING", log_json=False,
        channels=ChannelsSettings(
            telegram=TelegramChannelSettings(enabled=True, token=SecretStr(TOKEN), mode="webhook",
                                             webhook_secret=SecretStr(SECRET), base_url=f"{base}/bot",
                                             base_file_url=f"{base}/file/bot"),
            vk=VkChannelSettings(enabled=True, access_token=SecretStr(VK_TOKEN), group_id=VK_GROUP,
                                 confirmation_code="bench", secret=SecretStr(SECRET), api_base_url=f"{base}/method"),
            whatsapp=WhatsappChannelSettings(enabled=True, access_token=SecretStr(VK_TOKEN), phone_number_id=WA_PHONE,
                                             app_secret=SecretStr(SECRET), verify_token=SecretStr(SECRET),
                                             api_base_url=base),
            # Thousands of sockets from one address are the load here, not an abuse: no per-address limit.
            webchat=WebchatChannelSettings(message_burst=1000, messages_per_second=1000.0, frame_burst=1000,
                                           frames_per_second=1000.0, connections_per_second=0),
        ),
    )
    return create_app(settings, nlu_engine=KeywordEngine({k: list(v) for k, v in KEYWORDS.items()}),
                      responses=lambda intent, lang: ANSWERS.get((intent, lang)), configure_logs=False,
                      freeze_heap=True)


def start_server(args: argparse.Namespace, port: int, botapi_port: int, database_url: str, data_dir: Path,
                 ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_BOTAPI_PORT": str(botapi_port),
           "BENCH_DATABASE_URL": database_url, "BENCH_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", "from bench.channels_chat import serve_main; serve_main()",
         "--factory", "bench.channels_chat:bench_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--backlog", "4096", "--ws-max-size", "65536",
         "--workers", str(args.workers)],
        cwd=ROOT, env=env)


def serve_main() -> None:
    """uvicorn's command line, with the file-descriptor limit raised first (10,000 sockets)."""
    import uvicorn.main

    raise_fd_limit()
    sys.argv = ["uvicorn", *sys.argv[1:]]
    uvicorn.main.main()


# -- the load generator --------------------------------------------------------------------------------


class BotApi:
    """Answers the server's Bot API calls (getMe, sendMessage...) and counts them.

    Raw asyncio HTTP/1.1 rather than a web framework: it shares the load generator's CPU with the clients.
    """

    BOT: ClassVar[dict[str, Any]] = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}

    def __init__(self) -> None:
        self.sent = 0
        self.vk_sent = 0
        self.wa_sent = 0

    async def serve(self, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=1024)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                path = line.split()[1].decode()
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    key, _, value = h.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                payload = json.dumps(self._answer(path.rsplit("/", 1)[-1], headers, body)).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(payload), payload))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the server closed the connection, or the benchmark is over
        finally:
            writer.close()

    def _answer(self, method: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if method == "groups.getById":  # VK methods are named section.method
            return {"response": {"groups": [{"id": VK_GROUP, "screen_name": "bench"}]}}
        if method == "messages.send":
            self.vk_sent += 1
            return {"response": self.vk_sent}
        if method.startswith(WA_PHONE):  # the Graph API: GET /<version>/<phone number id>?fields=...
            return {"display_phone_number": "+1 555-000-0000", "id": WA_PHONE}
        if method == "messages":  # the Graph API: POST /<version>/<phone number id>/messages
            self.wa_sent += 1
            return {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.bench{self.wa_sent}"}]}
        if method == "getMe":
            return {"ok": True, "result": self.BOT}
        if method == "sendMessage":
            self.sent += 1
            if headers.get("content-type", "").startswith("application/json"):
                form = {k: str(v) for k, v in json.loads(body or b"{}").items()}
            else:
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            return {"ok": True, "result": {
                "message_id": self.sent, "date": int(time.time()), "from": self.BOT, "text": form.get("text", ""),
                "chat": {"id": int(form.get("chat_id", "0")), "type": "private"}}}
        return {"ok": True, "result": True}


def update(i: int) -> bytes:
    chat = 10_000 + i % 500
    return json.dumps({"update_id": i, "message": {
        "message_id": i, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "Load", "language_code": "en"},
        "text": "hello" if i % 2 else "my internet is down"}}).encode()


async def bench_telegram(port: int, n: int, concurrency: int, first_id: int = 1) -> dict[str, Any]:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    counter = iter(range(first_id, first_id + n))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            for i in counter:
                status = await conn.post("/channels/telegram/webhook", update(i), headers)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 600)
    elapsed = time.perf_counter() - start
    return {"updates": n, "seconds": elapsed, "per_second": n / elapsed, "statuses": statuses}


def vk_event(i: int) -> bytes:
    peer = 20_000 + i % 500
    return json.dumps({"type": "message_new", "group_id": VK_GROUP, "event_id": f"bench-{i}", "v": "5.199",
                       "secret": SECRET, "object": {"message": {
                           "id": i, "date": int(time.time()), "peer_id": peer, "from_id": peer, "attachments": [],
                           "text": "hello" if i % 2 else "my internet is down"}, "client_info": {}}}).encode()


async def bench_vk(port: int, n: int, concurrency: int, first_id: int = 1) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    counter = iter(range(first_id, first_id + n))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            for i in counter:
                status = await conn.post("/channels/vk/callback", vk_event(i), headers)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 600)
    elapsed = time.perf_counter() - start
    return {"updates": n, "seconds": elapsed, "per_second": n / elapsed, "statuses": statuses}


def wa_event(i: int) -> bytes:
    wa_id = str(79_000_000_000 + i % 500)
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550000000",
                                                          "phone_number_id": WA_PHONE},
            "contacts": [{"profile": {"name": "Load"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": f"wamid.bench-in-{i}", "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": "hello" if i % 2 else "my internet is down"}}]}}]}],
    }).encode()


def wa_headers(body: bytes) -> dict[str, str]:
    """A WhatsApp webhook's headers: JSON, signed with the app secret as Meta signs it."""
    return {"Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


async def bench_whatsapp(port: int, n: int, concurrency: int, first_id: int = 1) -> dict[str, Any]:
    counter = iter(range(first_id, first_id + n))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            for i in counter:
                body = wa_event(i)
                status = await conn.post("/channels/whatsapp/webhook", body, wa_headers(body))
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 600)
    elapsed = time.perf_counter() - start
    return {"updates": n, "seconds": elapsed, "per_second": n / elapsed, "statuses": statuses}


async def open_socket(url: str, **auth: Any) -> Any:
    import websockets

    ws = await websockets.connect(url, open_timeout=60, max_queue=64, ping_interval=None)
    await ws.send(json.dumps({"type": "auth", "lang": "en", **auth}))
    while json.loads(await ws.recv())["type"] != "history":
        pass
    return ws


async def bench_roundtrip(url: str, sockets: int, messages: int, rate: float) -> dict[str, Any]:
    conns = []
    for chunk in range(0, sockets, 200):
        conns += await asyncio.gather(*(open_socket(url) for _ in range(chunk, min(sockets, chunk + 200))))
    waiting: dict[int, tuple[asyncio.Future[float], float]] = {}
    latencies: list[float] = []

    async def reader(index: int, ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "message" and frame["author"] == "bot" and index in waiting:
                future, started = waiting.pop(index)
                future.set_result(time.perf_counter() - started)

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(conns)]
    loop = asyncio.get_running_loop()

    unanswered = 0

    async def one(seq: int) -> None:
        # Round robin, so no conversation gets more than two messages: the bot answers the first and hands the
        # second to an operator (a bot message too); from then on a human answers, and the bot stays silent.
        nonlocal unanswered
        index = seq % len(conns)
        future: asyncio.Future[float] = loop.create_future()
        waiting[index] = (future, time.perf_counter())
        await conns[index].send(json.dumps({"type": "message", "client_id": f"b{seq}", "text": "hello"}))
        try:
            latencies.append(await asyncio.wait_for(future, 30))
        except TimeoutError:
            unanswered += 1
            waiting.pop(index, None)

    start = time.perf_counter()
    tasks = []
    for seq in range(messages):
        tasks.append(asyncio.create_task(one(seq)))
        await asyncio.sleep(max(0.0, start + (seq + 1) / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    latencies.sort()
    return {"sockets": sockets, "messages": messages, "rate": rate, "seconds": elapsed, "unanswered": unanswered,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "max_ms": latencies[-1] * 1000}


async def bench_capacity(url: str, target: int, server_pid: int) -> dict[str, Any]:
    before = memory_mb(server_pid)
    conns: list[Any] = []
    start = time.perf_counter()
    try:
        for chunk in range(0, target, 250):
            conns += await asyncio.wait_for(
                asyncio.gather(*(open_socket(url) for _ in range(chunk, min(target, chunk + 250)))), 120)
    except Exception as exc:
        print(f"  stopped at {len(conns)} sockets: {type(exc).__name__}: {exc}", file=sys.stderr)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(1)
    after = memory_mb(server_pid)
    # Every socket is still alive: a ping each.
    alive = sum(r is True for r in await asyncio.gather(*(ping(ws) for ws in conns)))
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return {"sockets": len(conns), "alive": alive, "connect_seconds": elapsed, "rss_before_mb": before,
            "rss_after_mb": after}


async def ping(ws: Any) -> bool:
    try:
        await ws.send('{"type": "ping"}')
        async with asyncio.timeout(30):
            while json.loads(await ws.recv())["type"] != "pong":
                pass
        return True
    except Exception:
        return False


async def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
    botapi = BotApi()
    botapi_port = free_port()
    stand_in = await botapi.serve(botapi_port)
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    from core.db.migrate import upgrade_async

    await upgrade_async(database_url)
    port = free_port()
    server = start_server(args, port, botapi_port, database_url, tmp)
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/channels/webchat/ws"
    try:
        import httpx

        async with httpx.AsyncClient() as c:
            for _ in range(1200):  # up to 2 minutes: a busy machine starts the app slowly
                try:
                    health = (await c.get(f"{base}/health")).json()
                    if all(health["channels"].get(kind, {}).get("state") == "connected"
                           for kind in ("telegram", "vk", "whatsapp")):
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        rows = []
        # Warm-up (the chats' customers and tickets exist), then fresh planner statistics: see bench.load.analyze.
        warm = max(500, args.updates // 5)
        await bench_telegram(port, warm, args.concurrency)
        await bench_vk(port, warm, args.concurrency)
        await bench_whatsapp(port, warm, args.concurrency)
        await asyncio.to_thread(analyze, database_url)
        tg = await bench_telegram(port, args.updates, args.concurrency, first_id=warm + 1)
        print(f"telegram: {tg}", file=sys.stderr, flush=True)
        rows.append(("Telegram webhook updates/s (ingest committed; " f"{tg['updates']} updates, "
                     f"{args.concurrency} connections)", f"{tg['per_second']:.0f}/s", ">= 1,000/s",
                     str(tg["statuses"])))
        vk = await bench_vk(port, args.updates, args.concurrency, first_id=warm + 1)
        print(f"vk: {vk}", file=sys.stderr, flush=True)
        rows.append(("VK Callback API events/s (ingest committed; " f"{vk['updates']} events, "
                     f"{args.concurrency} connections)", f"{vk['per_second']:.0f}/s", ">= 1,000/s",
                     str(vk["statuses"])))
        wa = await bench_whatsapp(port, args.updates, args.concurrency, first_id=warm + 1)
        print(f"whatsapp: {wa}", file=sys.stderr, flush=True)
        rows.append(("WhatsApp webhook messages/s (signed; ingest committed; " f"{wa['updates']} messages, "
                     f"{args.concurrency} connections)", f"{wa['per_second']:.0f}/s", ">= 1,000/s",
                     str(wa["statuses"])))
        rt = await bench_roundtrip(ws_url, args.sockets, args.messages, args.rate)
        print(f"round trip: {rt}", file=sys.stderr, flush=True)
        rows.append((f"Web chat round trip p50 ({rt['sockets']} sockets, {rt['messages']} msgs at {rt['rate']:.0f}/s)",
                     f"{rt['p50_ms']:.1f} ms", "", ""))
        rows.append(("Web chat round trip p99", f"{rt['p99_ms']:.1f} ms", "< 50 ms",
                     f"max {rt['max_ms']:.0f} ms; unanswered within 30 s: {rt['unanswered']}"))
        cap = await bench_capacity(ws_url, args.max_sockets, server.pid)
        rows.append((f"Concurrent web-chat sockets (alive: {cap['alive']})", str(cap["sockets"]), ">= 10,000",
                     f"connected in {cap['connect_seconds']:.1f}s"))
        rows.append(("Server RSS with those sockets", f"{cap['rss_after_mb']:.0f} MB", "< 1,024 MB",
                     f"idle {cap['rss_before_mb']:.0f} MB"))
        print("\n| measure | result | target | notes |\n|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\nDatabase: {database_url.split(':')[0]}; bot answers received by the Bot API stand-in: {botapi.sent}, "
              f"by the VK API stand-in: {botapi.vk_sent}, by the Graph API stand-in: {botapi.wa_sent}")
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        stand_in.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the SQLite file, the server's log and data


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server (the run creates and drops a database of its own on it); "
                             "default: a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (PostgreSQL for > 1)")
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=40, help="Telegram's default max_connections")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="web-chat messages per second across all sockets")
    parser.add_argument("--max-sockets", type=int, default=10_000)
    args = parser.parse_args()
    if args.messages > 2 * args.sockets:
        parser.error("--messages may be at most twice --sockets (the bot answers two messages per conversation)")
    if not args.database_url.startswith("postgresql"):
        asyncio.run(main(args))
        return
    # A database of its own on that server, every run: the updates carry the same ids run after run, so in a
    # database an earlier run filled they are all duplicates (acknowledged, never answered: a faster, wrong path).
    from bench.pg import migrated_database

    with migrated_database(args.database_url, "sb_bench_chat") as url:
        args.database_url = url
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
