"""Where one webhook update's time goes: the Telegram, VK and WhatsApp webhook routes in one process, profiled.

    python bench/webhook_profile.py [--database-url URL] [--updates 1000] [--concurrency 40] [--top 30]
                                    [--channels vk,whatsapp,telegram] [--focus REGEX]

The whole app runs in this process (one worker, like one uvicorn worker of bench/channels_chat.py) and the updates
go in through the ASGI interface (no sockets: the HTTP server's share is left out, it is the same for every
channel). The provider stand-in that receives the bot's answers runs in a thread of its own, so cProfile (which
follows the main thread) sees only the app: the webhook, the ingest batch, the decision and the outbound send.
Prints, per channel, updates/s, CPU milliseconds per update, the functions with the most cumulative time (mind that
cProfile counts each resumption of a coroutine as a call, and a coroutine's cumulative time includes its waits), then
the channel's own functions and the signature and JSON calls by their own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.channels_chat import SECRET, BotApi, bench_app, update, vk_event, wa_event, wa_headers  # noqa: E402
from tests.support.net import free_port  # noqa: E402

CHANNELS: dict[str, tuple[str, Callable[[int], bytes], Callable[[bytes], dict[str, str]]]] = {
    "telegram": ("/channels/telegram/webhook", update,
                 lambda _b: {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}),
    "vk": ("/channels/vk/callback", vk_event, lambda _b: {"Content-Type": "application/json"}),
    "whatsapp": ("/channels/whatsapp/webhook", wa_event, wa_headers),
}


def stand_in(port: int) -> None:
    """The provider APIs' stand-in on its own loop and thread (outside the profile)."""
    loop = asyncio.new_event_loop()

    async def run() -> None:
        await BotApi().serve(port)
        await asyncio.Event().wait()

    loop.run_until_complete(run())


async def post_all(client: Any, kind: str, first: int, n: int, concurrency: int) -> dict[int, int]:
    path, make, headers = CHANNELS[kind]
    counter = iter(range(first, first + n))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        for i in counter:
            body = make(i)
            r = await client.post(path, content=body, headers=headers(body))
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def wait_sent(state: Any, total: int) -> None:
    """Until the outbox has no queued answers (the answers are part of an update's cost)."""
    from sqlalchemy import func, select

    from core.outbox.models import OutboxMessage, OutboxStatus

    for _ in range(600):
        async with state.sessionmaker() as session:
            left = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_([OutboxStatus.queued, OutboxStatus.sending])))
        if not left:
            return
        await asyncio.sleep(0.05)
    print(f"warning: answers still queued after {total} updates", file=sys.stderr)


async def main(args: argparse.Namespace) -> None:
    import httpx

    from core.db.migrate import upgrade_async

    port = free_port()
    threading.Thread(target=stand_in, args=(port,), daemon=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="sb-profile-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'profile.sqlite3'}"
    await upgrade_async(url)
    os.environ.update(BENCH_BOTAPI_PORT=str(port), BENCH_DATABASE_URL=url, BENCH_DATA_DIR=str(tmp))
    app = bench_app()
    async with app.router.lifespan_context(app):
        state = app.state.switchboard
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
            for _ in range(600):
                health = (await client.get("/health")).json()["channels"]
                if all(health.get(k, {}).get("state") == "connected" for k in args.channels):
                    break
                await asyncio.sleep(0.1)
            first = 1
            for kind in args.channels:  # warm-up: the chats' customers and tickets exist
                await post_all(client, kind, first, args.warm, args.concurrency)
            await wait_sent(state, args.warm)
            first += args.warm
            for kind in args.channels:
                profile = cProfile.Profile()
                cpu, wall = time.process_time(), time.perf_counter()
                profile.enable()
                statuses = await post_all(client, kind, first, args.updates, args.concurrency)
                await wait_sent(state, args.updates)
                profile.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"\n== {kind}: {args.updates} updates in {wall:.2f}s: {args.updates / wall:.0f}/s; "
                      f"CPU {1000 * cpu / args.updates:.2f} ms/update (with the answer sent); {statuses}")
                out = io.StringIO()
                stats = pstats.Stats(profile, stream=out)
                stats.sort_stats("cumulative").print_stats(args.top)
                print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
                if args.focus:  # the channel's own functions and the calls it makes (signature, JSON), own time
                    out = io.StringIO()
                    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.focus, args.top)
                    print(f"-- {kind}: functions matching {args.focus!r}, by own time")
                    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--focus", default=r"channels/|hmac|json/|_hashlib",
                        help="regex of functions listed by own time after the cumulative list ('' for none)")
    parser.add_argument("--channels", type=lambda s: s.split(","), default=["vk", "whatsapp", "telegram"])
    asyncio.run(main(parser.parse_args()))
