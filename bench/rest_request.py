"""What the REST channel's own request handling costs, without the pipeline behind it.

POST /channels/rest/messages is driven through the whole ASGI app (middleware, routing, the key check and its
limits, body validation, the response) with the ingest pipeline replaced by a stub, so the number is the
HTTP-side overhead of one message and nothing else. Run it on two commits to compare them: CPU time per request
(this process; steadier than wall time on a shared machine) and wall time, best of several rounds.

    .venv/bin/python bench/rest_request.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API_KEY = "bench-key"


async def measure(requests: int, rounds: int) -> list[tuple[str, int, float, float]]:
    from pydantic import SecretStr

    from api.app import create_app
    from api.settings import Settings
    from channels.config import ChannelsSettings, RestChannelSettings
    from core.db.migrate import upgrade
    from core.ingest.schemas import IngestResult
    from nlu.protocol import KeywordEngine

    workdir = tempfile.mkdtemp(prefix="sb-bench-rest-")
    url = f"sqlite+aiosqlite:///{workdir}/bench.sqlite3"
    await asyncio.to_thread(upgrade, url)
    rest: dict[str, Any] = {"api_key": SecretStr(API_KEY)}
    if "requests_per_second" in RestChannelSettings.model_fields:
        # The key's bucket is checked on every request but never empties: this loop runs far above any
        # real sender's rate (no pipeline behind it).
        rest["requests_per_second"] = rest["request_burst"] = 10**9
    settings = Settings(database_url=url, data_dir=Path(workdir), log_json=False, log_level="WARNING",
                        seed_nlu_data=False, workers_enabled=False,
                        channels=ChannelsSettings(rest=RestChannelSettings(**rest)))
    app = create_app(settings, nlu_engine=KeywordEngine({"greeting": ["hello"]}), configure_logs=False)
    result = IngestResult(ticket_id=1, ticket_number="T-000001", message_id=1, customer_id=1, created=True,
                          action="answer", reply_message_ids=[2])

    async def stub(_inbound: Any) -> IngestResult:
        return result

    rows = []
    async with app.router.lifespan_context(app):
        app.state.switchboard.ingest.ingest = stub
        good = json.dumps({"external_message_id": "m-1", "sender": {"external_id": "c-1", "name": "Иван"},
                           "text": "Где мой заказ ORD-100200?"}).encode()
        cases = [("accepted (right key)", API_KEY, good, 201),
                 ("invalid body (right key)", API_KEY, b'{"sender": {}}', 422),
                 ("no key", None, good, 401)]
        for name, key, body, expected in cases:
            cpu, wall = await run(app, key, body, expected, requests, rounds)
            rows.append((name, expected, cpu, wall))
    return rows


async def run(app: Callable[..., Any], key: str | None, body: bytes, expected: int, requests: int, rounds: int
              ) -> tuple[float, float]:
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if key is not None:
        headers.append((b"x-api-key", key.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/channels/rest/messages", "raw_path": b"/channels/rest/messages", "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "headers": headers}
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / requests)
        best_wall = min(best_wall, (time.perf_counter() - wall) / requests)
    if statuses != {expected}:
        raise SystemExit(f"expected {expected}, got {statuses}")
    return best_cpu, best_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the best is shown")
    args = parser.parse_args()
    rows = asyncio.run(measure(args.requests, args.rounds))
    print(f"{'request':<26}  {'status':>6}  {'us CPU':>7}  {'us wall':>7}")
    print(f"{'-' * 26}  {'-' * 6}  {'-' * 7}  {'-' * 7}")
    for name, status, cpu, wall in rows:
        print(f"{name:<26}  {status:>6}  {cpu * 1e6:>7.1f}  {wall * 1e6:>7.1f}")


if __name__ == "__main__":
    main()
