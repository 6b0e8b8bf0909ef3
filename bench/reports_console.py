"""The console's reports pages on a year of data: what a supervisor waits for, page by page, on PostgreSQL.

    .venv/bin/python bench/reports_console.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A private database (`sb_bench_rui_<random>`, dropped at the end) is filled with bench/reports.py's COPY generator
(default 1,000,000 tickets, ~3 messages each) and the KPI aggregates rebuilt. Then the app (workers off, so no
background job competes) answers a signed-in supervisor in-process (httpx ASGI): the reports page over 30 and 365
days in several groupings, one agent's page (one engine report filtered by the agent: by month and by day over a
year, by week over 90 days, by day over 31 days) and its drill-down, the drill-down's first page, both exports,
the Admin -> Weekly summary page, and the weekly summary's firing (two week reports and a mail per recipient
composed), each --runs times after a warm-up (p50/p95). Beside them, the engine's report alone (`kpis.report`, the
same query) as the baseline measured in the same run: the difference is the page's own cost (names, charts,
template). The machine is shared: compare rows of one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from channels.config import ChannelsSettings, RestChannelSettings  # noqa: E402
from core.clock import SYSTEM_CLOCK  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.jobs.tasks import DueTask  # noqa: E402
from core.kpis import service as kpis  # noqa: E402
from core.kpis.fold import KpiFold  # noqa: E402
from core.kpis.schemas import GroupBy, KpiQuery  # noqa: E402
from core.summaries import service as summaries  # noqa: E402
from core.summaries.job import WeeklySummary  # noqa: E402
from core.summaries.schemas import StaffMail  # noqa: E402
from core.summaries.settings import SummarySettings  # noqa: E402
from core.users import service as users  # noqa: E402
from core.users.models import Role  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_reports", ROOT / "bench" / "reports.py")
if _spec is None or _spec.loader is None:
    raise SystemExit("bench/reports.py (the COPY generator) is missing")
bench_reports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_reports)
PASSWORD = "bench-password-1"  # noqa: S105  (accounts of a throw-away database)

ZONE = "Europe/Moscow"


class NoMail:
    """The summary's firing composes and queues mails; nothing is sent here."""

    async def send(self, mail: StaffMail) -> None:  # pragma: no cover  (never called: no sender job runs)
        raise RuntimeError("not sending in a benchmark")

    def describe(self) -> str | None:
        return None


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await work()  # warm (plans, caches, templates)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - t0) * 1000)
    return bench_reports.pct(samples, 50), bench_reports.pct(samples, 95)


async def run(args: argparse.Namespace) -> None:
    name = f"sb_bench_rui_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    await bench_reports.admin(args.postgres, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url)
        now = datetime.now(UTC)
        filler = bench_reports.Filler(args.tickets, now)
        t0 = time.monotonic()
        conn = await asyncpg.connect(bench_reports.raw_dsn(url))
        try:
            await filler.prepare(conn)
            await filler.fill(conn)
        finally:
            await conn.close()
        print(f"filled {args.tickets:,} tickets and {filler.messages_total:,} messages in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        t0 = time.monotonic()
        await KpiFold(sessionmaker, SYSTEM_CLOCK, time_zone=ZONE).rebuild()
        print(f"rebuilt the KPI aggregates in {time.monotonic() - t0:.0f} s", flush=True)
        async with sessionmaker() as session, session.begin():
            supervisor = await users.create(session, email="boss@bench.example", name="Boss",
                                            password=PASSWORD, role=Role.supervisor)
            for n in range(args.recipients - 1):
                await users.create(session, email=f"sup{n}@bench.example", name=f"Sup {n}", password=PASSWORD,
                                   role=Role.supervisor, language="ru" if n % 2 else "en")
            token = await users.issue_token(session, supervisor, timedelta(hours=2))
            agent_id = filler.agents[filler.queues[0]][0]

        settings = Settings(database_url=url, workers_enabled=False, log_json=False, log_level="WARNING",
                            seed_nlu_data=False,
                            channels=ChannelsSettings(rest=RestChannelSettings(enabled=False)))
        app = create_app(settings, configure_logs=False)
        today = now.astimezone(ZoneInfo(ZONE)).date()
        rows: list[tuple[str, float, float]] = []

        def span(days: int) -> dict[str, str]:
            return {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         cookies={"sb_session": token}) as client:

                async def page(path: str, params: dict[str, str]) -> None:
                    response = await client.get(path, params=params)
                    if response.status_code != 200:
                        raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")

                async def engine_alone(days: int, group_by: GroupBy, agent: int | None = None) -> None:
                    query = KpiQuery(date_from=today - timedelta(days=days - 1), date_to=today, group_by=group_by,
                                     agent_id=agent)
                    async with sessionmaker() as session:
                        await kpis.report(session, query, time_zone=ZONE)

                measures: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
                for days, group_by in ((30, "day"), (365, "day"), (365, "week"), (365, "month"), (30, "channel"),
                                       (30, "agent"), (365, "agent"), (365, "queue"), (365, "intent")):
                    measures.append((f"engine alone: {days} days by {group_by}",
                                     lambda d=days, g=group_by: engine_alone(d, GroupBy(g))))
                    measures.append((f"page /console/reports: {days} days by {group_by}",
                                     lambda d=days, g=group_by: page("/console/reports",
                                                                     {**span(d), "group_by": g})))
                agent_path = f"/console/reports/agents/{agent_id}"
                for days, group_by in ((365, "month"), (90, "week"), (31, "day"), (365, "day")):
                    measures.append((f"engine alone: one agent, {days} days by {group_by}",
                                     lambda d=days, g=group_by: engine_alone(d, GroupBy(g), agent_id)))
                    measures.append((f"agent page: {days} days by {group_by}",
                                     lambda d=days, g=group_by: page(agent_path, {**span(d), "group_by": g})))
                measures += [
                    ("agent drill-down first page: 365 days by day, all tickets",
                     lambda: page("/console/reports/tickets", {**span(365), "group_by": "day", "agent": str(agent_id),
                                                              "metric": "tickets"})),
                    ("drill-down first page: 365 days, all tickets",
                     lambda: page("/console/reports/tickets", {**span(365), "metric": "tickets"})),
                    ("drill-down first page: 30 days, SLA first response breached",
                     lambda: page("/console/reports/tickets", {**span(30), "metric": "sla_first_response_breached"})),
                    ("drill-down first page: 365 days, one channel's low CSAT",
                     lambda: page("/console/reports/tickets", {**span(365), "group_by": "channel", "key": "email",
                                                              "metric": "csat_low"})),
                    ("export CSV: 365 days by day",
                     lambda: page("/console/reports/export", {**span(365), "group_by": "day", "format": "csv"})),
                    ("export XLSX: 365 days by day",
                     lambda: page("/console/reports/export", {**span(365), "group_by": "day", "format": "xlsx"})),
                    ("Admin -> Weekly summary page", lambda: page("/console/admin/summary", {})),
                ]

                summary = WeeklySummary(SummarySettings(time_zone=ZONE), NoMail(), "bench.example")

                async def fire() -> None:
                    async with sessionmaker() as session:
                        await session.begin()
                        await summaries.set_enabled(session, True, supervisor, now)
                        due = summaries.next_run(summary.settings, now - timedelta(days=7))
                        await summary.fire(session, DueTask(0, summaries.SUMMARY_TASK, "bench", due, {}, 1))
                        await session.rollback()  # measured again next run: nothing kept

                measures.append((f"weekly summary firing: 2 week reports + {args.recipients} mails composed", fire))
                for label, work in measures:
                    p50, p95 = await timed(args.runs, work)
                    rows.append((label, p50, p95))
                    print(f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)

        await engine.dispose()
        load = os.getloadavg()
        print()
        print(f"Console reports on {args.tickets:,} tickets / {filler.messages_total:,} messages (PostgreSQL, "
              f"{args.runs} runs each after a warm-up)")
        print()
        print("| measure | p50 | p95 |")
        print("|---|---|---|")
        for label, p50, p95 in rows:
            print(f"| {label} | {p50:.1f} ms | {p95:.1f} ms |")
        print()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores shared with "
              f"other work")
    finally:
        if not args.keep:
            await bench_reports.admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=bench_reports.DEFAULT_URL,
                        help="a PostgreSQL server URL (a database is made there)")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each measure")
    parser.add_argument("--recipients", type=int, default=10, help="supervisors the weekly summary goes to")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

