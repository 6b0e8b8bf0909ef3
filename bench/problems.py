"""Typical-problem analysis on a year of data, on PostgreSQL.

    .venv/bin/python bench/problems.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A private database (`sb_bench_problems_<random>`, created here and dropped at the end unless --keep) gets a year
built by bench/yeardata.py (the benchmarks' one generator): --tickets tickets over the 365 days before now with
about --messages messages, each ticket's first message carrying the bot's decision (escalations for the policy's
reasons; ~9 % not understood, with texts from RU/EN problem templates and some noise), four channels, the last 400
tickets a spike of one intent in the last two hours (so the rising evaluation has something to raise). The KPI
engine's hourly volumes (kpi_hourly, what its fold keeps and `counts` reads) are written with the data, as its fold
would have counted them; --kpi-rebuild builds them with that engine's own rebuild instead (core/kpis/fold.py: the
same numbers, but over an hour at 1M tickets on this shared machine). Each of this feature's
reads then runs --runs times (the clusters --cluster-runs times), reporting p50/p95:

- top intents and top escalation reasons over 30 and 365 days (from the hourly counts, with the previous period);
- one rising-problem evaluation (intents and channels; its transaction rolled back so every run is the same);
- the alert list; the clusters of the not-understood messages over 30 and 365 days (the most recent
  --cluster-cap of the period: query + clustering, the clustering alone shown apart).

Target (issue 12, scope 5): every report < 1 s p95 over 30 and 365 days. The machine is shared: timings are noisy,
so each row is measured in alternation with the others, and the run prints the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import admin  # noqa: E402 - after the path is set
from bench.yeardata import YearSpec, fill  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.kpis.fold import KpiFold  # noqa: E402
from core.problems import service as problems  # noqa: E402
from core.problems.config import ProblemsSettings  # noqa: E402
from core.problems.schemas import PeriodQuery, TopDimension, TopQuery  # noqa: E402

DEFAULT_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
ZONE = "Europe/Moscow"
def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    name = f"sb_bench_problems_{uuid.uuid4().hex[:8]}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await asyncio.to_thread(upgrade, url)
        now = datetime.now(UTC)
        began = time.perf_counter()
        stats = await fill(url, YearSpec(customers=max(1000, args.tickets // 3), tickets=args.tickets,
                                         messages_per_ticket=args.messages / args.tickets,
                                         orders=max(1000, args.tickets // 10), seed=args.seed, end=now, spike=400,
                                         hourly_volumes=not args.kpi_rebuild))
        written = {"tickets": stats.rows["tickets"], "messages": stats.rows["messages"],
                   "not_understood": stats.not_understood}
        fill_s = time.perf_counter() - began
        sessionmaker = create_sessionmaker(engine)
        rebuild = "hourly volumes written with the data (COPY)"
        if args.kpi_rebuild:
            began = time.perf_counter()
            fold = KpiFold(sessionmaker, time_zone=ZONE, rebuild_chunk=5000)
            while await fold.run_once():
                pass
            rebuild = f"KPI rebuild (kpi branch) {time.perf_counter() - began:.0f} s"
        print(f"COPY {fill_s:.0f} s; {rebuild}", flush=True)
        settings = ProblemsSettings(clusters_max_messages=args.cluster_cap)
        today = now.astimezone(ZoneInfo(ZONE)).date()

        def period(days: int) -> tuple[date, date]:
            return today - timedelta(days=days - 1), today

        async def top(days: int, dimension: TopDimension) -> Any:
            first, last = period(days)
            async with sessionmaker() as s:
                return await problems.top(s, TopQuery(date_from=first, date_to=last, dimension=dimension),
                                          time_zone=ZONE)

        async def rising() -> Any:
            async with sessionmaker() as s, s.begin():
                outcome = await problems.evaluate_rising(s, ProblemsSettings(), now)
                raised = [f"{a.dimension.value}:{a.key} x{a.ratio:g}" for a in outcome.raised]
                await s.rollback()
                return raised

        async def alerts() -> Any:
            async with sessionmaker() as s:
                return await problems.alert_history(s, limit=50)

        cluster_seconds: dict[int, list[float]] = {30: [], 365: []}

        async def clusters(days: int) -> Any:
            first, last = period(days)
            async with sessionmaker() as s:
                report = await problems.clusters(s, PeriodQuery(date_from=first, date_to=last), settings,
                                                 time_zone=ZONE)
            cluster_seconds[days].append(report.seconds)
            return report

        rows: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
            ("top intents, 30 days", lambda: top(30, TopDimension.intent), args.runs),
            ("top intents, 365 days", lambda: top(365, TopDimension.intent), args.runs),
            ("top escalation reasons, 30 days", lambda: top(30, TopDimension.escalation_reason), args.runs),
            ("top escalation reasons, 365 days", lambda: top(365, TopDimension.escalation_reason), args.runs),
            ("rising evaluation (intents + channels)", rising, args.runs),
            ("alert list (50)", alerts, args.runs),
            ("clusters, 30 days", lambda: clusters(30), args.cluster_runs),
            ("clusters, 365 days", lambda: clusters(365), args.cluster_runs),
        ]
        timings: dict[str, list[float]] = {label: [] for label, _, _ in rows}
        results: dict[str, Any] = {}
        for label, work, _ in rows:  # warm-up (not counted)
            results[label] = await work()
        for values in cluster_seconds.values():  # nor its clustering time (it was counted in the median)
            values.clear()
        for round_no in range(max(n for _, _, n in rows)):
            for label, work, n in rows:  # alternate, so a noisy neighbour hurts every row alike
                if round_no < n:
                    t0 = time.perf_counter()
                    await work()
                    timings[label].append(time.perf_counter() - t0)

        print()
        print(f"PostgreSQL, private database {name}; load average {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} cores (shared)")
        print(f"data: {written['tickets']:,} tickets, {written['messages']:,} messages, "
              f"{written['not_understood']:,} not understood; COPY {fill_s:.0f} s; {rebuild}")
        print()
        print(f"| {'report':<40} | {'runs':>4} | {'p50 ms':>8} | {'p95 ms':>8} | what it returned")
        print(f"|{'-' * 42}|{'-' * 6}|{'-' * 10}|{'-' * 10}|{'-' * 30}")
        for label, _, n in rows:
            values = timings[label]
            print(f"| {label:<40} | {n:>4} | {pct(values, 50) * 1000:>8.0f} | {pct(values, 95) * 1000:>8.0f} | "
                  f"{describe(results[label])}")
        for days, values in cluster_seconds.items():
            print(f"| {f'  of which clustering, {days} days':<40} | {len(values):>4} | "
                  f"{statistics.median(values) * 1000:>8.0f} | {pct(values, 95) * 1000:>8.0f} |")
    finally:
        await engine.dispose()
        if not args.keep:
            await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def describe(result: Any) -> str:
    if isinstance(result, list):
        return "raised " + (", ".join(result) or "nothing")
    if hasattr(result, "clusters"):
        top = result.clusters[0] if result.clusters else None
        return (f"{result.messages:,} messages, {result.analysed:,} analysed, {len(result.clusters)} clusters"
                + (f", biggest {top.size} ({', '.join(top.terms[:3])})" if top else ""))
    if hasattr(result, "items") and hasattr(result, "total"):
        first = result.items[0] if result.items else None
        return f"total {result.total:,}" + (f", #1 {first.key} {first.count:,} ({first.change_pct}%)" if first else "")
    if hasattr(result, "items"):
        return f"{len(result.items)} alerts"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_URL, help="a PostgreSQL URL with the right to create databases")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cluster-runs", type=int, default=5)
    parser.add_argument("--cluster-cap", type=int, default=ProblemsSettings().clusters_max_messages)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--kpi-rebuild", action="store_true",
                        help="build the KPI engine's aggregates with its own rebuild (slow at 1M tickets) instead of "
                             "writing its hourly volumes with the data")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
