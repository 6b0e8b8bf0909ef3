"""Where one request's time goes: every SQL statement it runs, with its time, and the slowest ones explained.

Serves the real app in-process against an existing database (as bench/scale.py --reuse does), signs in a
supervisor, runs the request `--repeat` times after one warm-up, and prints, for the last run, each statement
in order with its milliseconds, then `EXPLAIN (ANALYZE, BUFFERS)` of the `--explain` slowest (PostgreSQL).

    .venv/bin/python bench/trace.py --reuse postgresql+asyncpg://postgres@127.0.0.1:5432/sb_scale_x \\
        --path '/console/inbox?view=queue&queue=technical' [--console] [--repeat 3] [--explain 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bench.scale import console_login, new_supervisor, served_app  # noqa: E402
from core.search.repository import _SEARCH_SETTINGS as SEARCH_SETTINGS  # noqa: E402


class Recorder:
    """Statements of the engine the app uses, with their wall time (the driver's round trip included)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str, Any]] = []
        self._started: dict[int, float] = {}

    def before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        started = self._started.pop(id(cursor), None)
        if started is not None:
            self.rows.append(((time.perf_counter() - started) * 1000, statement, parameters))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", required=True, help="the filled database (SQLAlchemy URL)")
    parser.add_argument("--path", required=True)
    parser.add_argument("--console", action="store_true", help="a console page (cookie) rather than the API")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", type=int, default=2, help="EXPLAIN ANALYZE the N slowest statements")
    parser.add_argument("--team", default="technical", help="the supervisor's team (the queue view reads it)")
    parser.add_argument("--full", type=int, default=0, help="print the N slowest statements whole, with parameters")
    parser.add_argument("--set", default=",".join(f"{k}={v}" for k, v in SEARCH_SETTINGS.items()),
                        help="planner settings for the EXPLAINs, as the search sets them (name=value,...)")
    args = parser.parse_args()

    boss = await new_supervisor(args.reuse, args.team or None)
    email, token = boss.email, boss.token
    app = served_app(args.reuse, Path("var/trace"))
    recorder = Recorder()
    async with app.router.lifespan_context(app):
        app_engine = app.state.switchboard.db_engine
        event.listen(app_engine.sync_engine, "before_cursor_execute", recorder.before)
        event.listen(app_engine.sync_engine, "after_cursor_execute", recorder.after)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            if args.console:
                await console_login(client, email)
            headers = None if args.console else {"Authorization": f"Bearer {token}"}
            walls = []
            for _ in range(args.repeat + 1):
                recorder.rows.clear()
                t0 = time.perf_counter()
                response = await client.get(args.path, headers=headers)
                walls.append((time.perf_counter() - t0) * 1000)
        print(f"{args.path}: status {response.status_code}; wall ms per run: "
              + ", ".join(f"{w:.1f}" for w in walls) + " (the first is the warm-up)")
        total = sum(r[0] for r in recorder.rows)
        print(f"last run: {len(recorder.rows)} statements, {total:.1f} ms in SQL\n")
        for n, (ms, statement, _) in enumerate(recorder.rows, 1):
            print(f"{n:3d} {ms:8.1f} ms  {' '.join(statement.split())[:220]}")
        for ms, statement, parameters in sorted(recorder.rows, key=lambda r: -r[0])[:args.full]:
            print(f"\n=== {ms:.1f} ms\n{statement}\n{parameters!r}")
        if args.explain and args.reuse.startswith("postgresql"):
            slowest = sorted(recorder.rows, key=lambda r: -r[0])[:args.explain]
            async with app_engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection  # asyncpg: the statement's own $n parameters
                for setting in filter(None, args.set.split(",")):
                    name, _, value = setting.partition("=")
                    await driver.execute(f"SET {name.strip()} = '{value.strip()}'")
                for ms, statement, parameters in slowest:
                    plan = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ()))
                    print(f"\n--- {ms:.1f} ms: {' '.join(statement.split())[:300]}")
                    print("\n".join(row[0] for row in plan))


if __name__ == "__main__":
    asyncio.run(main())
