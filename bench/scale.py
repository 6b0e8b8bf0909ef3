"""A year of data: p50/p95 of the inbox, lists, search, history, a ticket and the board (issue 13).

Builds the year with bench/yeardata.py in a new database (PostgreSQL: a private database on the given server,
1,000,000 tickets by default; SQLite: a file, 100,000 tickets), then serves the real app in-process (httpx over
ASGI: routing, auth, the services and templates, no network) with background workers off, signs in a supervisor
(API token and console cookie) and measures each request `--repeat` times after one warm-up.

    .venv/bin/python bench/scale.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/scale.py --sqlite var/scale.sqlite3 --tickets 100000
    ... --keep (leave the database for the next run) --reuse URL (measure an already filled database)
    ... --only 'search|board' (just the cases whose name matches)

Target: every p95 < 200 ms. The machine is shared: rerun a case that looks off; the table says the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench.yeardata import YearSpec, customer_email, customer_phone, fill, order_number  # noqa: E402
from core.db.migrate import upgrade_async  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.users import service as users  # noqa: E402
from core.users.models import Role  # noqa: E402

TARGET_MS = 200.0


@dataclass(frozen=True, slots=True)
class Case:
    """One measured request: its row's name, the path, and whether it is the console's (cookie) or the API's."""

    name: str
    path: str
    console: bool
PASSWORD = "scale-bench-password"  # noqa: S105 - a throwaway account in a throwaway database


async def _admin(server_url: str, sql: str) -> None:
    engine = create_engine(server_url)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


def _fresh_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def prepare(args: argparse.Namespace) -> tuple[str, str | None]:
    """The database URL to measure, and (PostgreSQL) the database to drop afterwards."""
    if args.reuse:
        return args.reuse, None
    if args.postgres:
        name = f"sb_scale_{uuid.uuid4().hex[:8]}"
        await _admin(args.postgres, f'CREATE DATABASE "{name}"')
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    else:
        path = Path(args.sqlite)
        await asyncio.to_thread(_fresh_file, path)
        url, name = f"sqlite+aiosqlite:///{path}", None
    await upgrade_async(url)
    spec = YearSpec(customers=args.customers or max(1000, args.tickets // 5), tickets=args.tickets,
                    orders=max(1000, args.tickets // 10))
    started = time.perf_counter()
    stats = await fill(url, spec)
    print(f"\nfilled in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{t} {n:,}" for t, n in stats.rows.items()))
    print("  " + ", ".join(f"{k} {v:.0f} s" for k, v in stats.seconds.items()))
    return url, name


async def console_login(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/console/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, "no CSRF field on the login page"
    response = await client.post("/console/login", data={"email": email, "password": PASSWORD,
                                                        "csrf_token": csrf[1], "next": ""})
    assert response.status_code in (200, 303), response.status_code


@dataclass(frozen=True, slots=True)
class Supervisor:
    """A throwaway supervisor signed up in the measured database, and what the year holds (the highest ids)."""

    email: str
    token: str
    tickets: int
    customers: int


async def new_supervisor(url: str, team_slug: str | None = None) -> Supervisor:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    email = f"bench-{uuid.uuid4().hex[:6]}@bench.example"
    async with sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, team_slug) if team_slug else None
        user = await users.create(session, email=email, name="Bench Supervisor", password=PASSWORD,
                                  role=Role.supervisor, team=team)
        token = await users.issue_token(session, user, timedelta(hours=2))
        tickets = int(await session.scalar(text("SELECT max(id) FROM tickets")) or 0)
        customers = int(await session.scalar(text("SELECT max(id) FROM customers")) or 0)
    await engine.dispose()
    return Supervisor(email, token, tickets, customers)


def served_app(url: str, data_dir: Path) -> FastAPI:
    """The app over a filled database with background workers off, as the server runs it (api.app.app_factory:
    the heap alive at start frozen out of the collector's full passes)."""
    settings = Settings(database_url=url, workers_enabled=False, seed_nlu_data=False, log_json=False,
                        log_level="WARNING", data_dir=data_dir, environment="development")
    return create_app(settings, configure_logs=False, freeze_heap=True)


async def measure(url: str, args: argparse.Namespace) -> tuple[list[tuple[str, float, float, float, int]], int]:
    """Each case's (name, p50, p95, max, status), and how many tickets the database holds (the highest id)."""
    boss = await new_supervisor(url)
    email, token, tickets, customers = boss.email, boss.token, boss.tickets, boss.customers
    app = served_app(url, Path(args.data_dir))
    headers = {"Authorization": f"Bearer {token}"}
    mid, cust = tickets // 2, min(5000, customers)
    some = customers * 77777 // 200000 or 1

    def api(name: str, path: str) -> Case:
        return Case(name, path, console=False)

    def console(name: str, path: str) -> Case:
        return Case(name, path, console=True)

    def search(name: str, q: str, **filters: str) -> Case:
        # Quoted here, once: "+" of a phone, quotes of a phrase, spaces, Cyrillic.
        return api(f"search: {name}", "/tickets?" + urlencode({"q": q, **filters}))

    cases = [
        console("inbox: all", "/console/inbox?view=all"),
        console("inbox: mine", "/console/inbox?view=mine"),
        console("inbox: unassigned", "/console/inbox?view=unassigned"),
        console("inbox: queue", "/console/inbox?view=queue&queue=technical"),
        console("inbox: done", "/console/inbox?view=done"),
        console("inbox: by SLA due", "/console/inbox?view=all&sort=due"),
        console("inbox rows (live refresh)", "/console/inbox/rows?view=all"),
        api("API list, first page", "/tickets"),
        api("API list, offset 10,000 (the deepest offset; beyond: 422, use cursor)", "/tickets?offset=10000&limit=50"),
        api("API list, newest", "/tickets?sort=newest"),
        search("Russian word", "роутер"),
        search("Russian word form", "роутером"),
        search("English word", "router"),
        search("phrase", '"не работает интернет"'),
        search("prefix", "модем*"),
        search("word + filters", "тариф", status="open", queue="billing"),
        search("word + customer's name", "роутер Котов"),
        search("email", customer_email(some)),
        search("phone", customer_phone(some)),
        search("ticket number", f"T-{mid:06d}"),
        search("order number", order_number(1234)),
        console("search in the console", "/console/inbox?" + urlencode({"view": "all", "q": "роутер"})),
        api("customer history", f"/customers/{cust}/history"),
        api("open a ticket (API)", f"/tickets/T-{mid:06d}"),
        console("open a ticket (console)", f"/console/tickets/T-{mid:06d}"),
        console("supervisor board", "/console/board"),
    ]
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.name)]
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api_client, \
                httpx.AsyncClient(transport=transport, base_url="http://bench") as console_client:
            await console_login(console_client, email)
            # Sweep the list with cursors once, to find a deep cursor (the 2,001st page of 50).
            deep = None
            if args.deep_cursor and (not args.only or re.search(args.only, "API list, cursor")):
                cursor = None
                for _ in range(args.deep_cursor):
                    page = (await api_client.get("/tickets?limit=200&status=closed" + (
                        f"&cursor={cursor}" if cursor else ""), headers=headers)).json()
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
                deep = cursor
            if deep:
                cases.insert(9, api(f"API list, cursor after {args.deep_cursor * 200:,} rows",
                                    f"/tickets?status=closed&limit=50&cursor={deep}"))
            for case in cases:
                client = console_client if case.console else api_client

                async def call(client: httpx.AsyncClient = client, case: Case = case) -> int:
                    r = await client.get(case.path, headers=None if case.console else headers)
                    return r.status_code

                results.append((case.name, *await _timed(call, args.repeat)))
    return results, tickets


async def _timed(call: Callable[[], Awaitable[int]], repeat: int) -> tuple[float, float, float, int]:
    status = await call()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        status = await call()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, times[-1], status


def table(backend: str, tickets: int, rows: list[tuple[str, float, float, float, int]]) -> str:
    out = [f"\n### {backend}, {tickets:,} tickets (p95 target {TARGET_MS:.0f} ms)\n",
           "| request | p50 ms | p95 ms | max ms | status | p95 < target |", "|---|---:|---:|---:|---:|:---:|"]
    for name, p50, p95, worst, status in rows:
        out.append(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {status} | "
                   f"{'yes' if p95 < TARGET_MS and status == 200 else 'NO'} |")
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--postgres", help="a server URL (any database on it): the year goes in a new database")
    where.add_argument("--sqlite", help="a file path for the SQLite database")
    where.add_argument("--reuse", help="measure an already filled database (SQLAlchemy URL)")
    parser.add_argument("--tickets", type=int, default=None)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--deep-cursor", type=int, default=100, help="pages of 200 to walk for a deep cursor")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    parser.add_argument("--data-dir", default="var/scale")
    parser.add_argument("--only", help="measure only the cases whose name matches this regular expression")
    args = parser.parse_args()
    if args.tickets is None:
        args.tickets = 100_000 if args.sqlite else 1_000_000
    url, created = await prepare(args)
    try:
        rows, tickets = await measure(url, args)
        backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        print(table(backend, tickets, rows))  # as found: a reused database holds what it holds
    finally:
        if created and not args.keep:
            await _admin(args.postgres, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
        elif created:
            print(f"\nkept: {url}")


if __name__ == "__main__":
    asyncio.run(main())
