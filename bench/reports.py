"""KPI reports on a year of data: 1,000,000 tickets and 3,000,000 messages on PostgreSQL.

    .venv/bin/python bench/reports.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A private database (`sb_bench_kpi_<random>`, created here and dropped at the end) is filled with COPY (never the
HTTP API) with a year of appeals in realistic shares: channels (Telegram 40 %, web chat 30 %, e-mail 20 %, REST
10 %), 24 intents of the shipped NLU data (complaint 4 %), five queues and 50 agents, about a third contained by the
bot, escalations with their decision reasons, first responses and resolutions with long-tailed times (some next
day), 5 % reopened, 20 % touched by a second agent, SLA clocks on half of the escalated tickets (24/7 and office-hours
calendars; breaches where the reply came late), surveys on half of the human resolutions and 55 % of them answered.

Then it measures, printing tables:
1. the rebuild (`switchboard reports rebuild`'s code: every ticket's facts, the rollups, the hourly volumes);
2. every report over the last 30 and the last 365 days for each group_by (the service as the API calls it, the
   answer serialised to JSON), the drill-down's first page, the CSV and XLSX exports and the hourly counts, each
   --runs times (p50/p95);
3. the fold job's cost for --changes ticket changes (new messages and status changes written like the app writes
   them), from the first tick to caught up.
The machine is shared: compare runs made together, not across days.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import admin, raw_dsn  # noqa: E402 - after the path is set
from core.clock import SYSTEM_CLOCK  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.kpis import export  # noqa: E402
from core.kpis import service as kpis  # noqa: E402
from core.kpis.fold import KpiFold  # noqa: E402
from core.kpis.schemas import GroupBy, KpiQuery, Metric  # noqa: E402

DEFAULT_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
ZONE = "Europe/Moscow"
CHANNELS = [("telegram", 0.4), ("webchat", 0.3), ("email", 0.2), ("rest", 0.1)]
INTENTS = [
    ("internet_down", 0.12), ("slow_internet", 0.09), ("billing_question", 0.09), ("balance_check", 0.07),
    ("tariff_change", 0.06), ("tariff_info", 0.06), ("mobile_no_signal", 0.05), ("tv_not_working", 0.04),
    ("order_status", 0.05), ("payment_methods", 0.04), ("router_setup", 0.04), ("complaint", 0.04),
    ("human_handoff", 0.04), ("greeting", 0.03), ("roaming", 0.03), ("contract_terminate", 0.02),
    ("contract_info", 0.02), ("new_connection", 0.02), ("personal_data_change", 0.01), ("data_deletion", 0.01),
    ("office_hours", 0.01), ("goodbye", 0.005), ("thanks", 0.005), (None, 0.05),
]
REASONS = [("declared_escalate", 0.35), ("needs_human", 0.2), ("low_confidence", 0.18), ("handoff", 0.12),
           ("repeated_question", 0.08), ("nlu_unavailable", 0.02), ("second_failed_answer", 0.05)]
SCORES = [(1, 0.08), (2, 0.07), (3, 0.15), (4, 0.3), (5, 0.4)]


def pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def lognormal_seconds(rng: random.Random, median: float, sigma: float, cap: float) -> float:
    return min(cap, max(5.0, rng.lognormvariate(math.log(median), sigma)))


class Filler:
    """Builds the tickets and everything they carry, a chunk at a time (COPY per table)."""

    def __init__(self, tickets: int, now: datetime, seed: int = 7) -> None:
        self.tickets = tickets
        self.now = now
        self.rng = random.Random(seed)
        self.customers = max(1, tickets // 3)
        self.message_id = 0
        self.messages_total = 0

    async def prepare(self, conn: asyncpg.Connection) -> None:
        now = self.now
        # The queues the migrations seed.
        self.teams = {r["slug"]: r["id"] for r in await conn.fetch("SELECT id, slug FROM teams ORDER BY id")}
        self.queues = tuple(self.teams)
        self.agents: dict[str, list[int]] = {}
        for n in range(50):
            queue = self.queues[n % len(self.queues)]
            user_id = await conn.fetchval(
                "INSERT INTO users (email, name, password_hash, role, team_id, capacity, is_active, language, "
                "languages, away, created_at) VALUES ($1, $2, 'x', 'agent', $3, 10, true, 'en', '[]', false, $4) "
                "RETURNING id", f"agent{n}@bench.example", f"Agent {n}", self.teams[queue], now)
            self.agents.setdefault(queue, []).append(user_id)
        week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        office = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
        self.policies = []
        for name, weekly, minutes in (("24/7 bench", week, 30), ("office bench", office, 60)):
            calendar = await conn.fetchval(
                "INSERT INTO calendars (name, time_zone, weekly, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)"
                " RETURNING id", name, ZONE, json.dumps(weekly), now)
            policy = await conn.fetchval(
                "INSERT INTO sla_policies (name, position, enabled, queue_ids, priorities, channels, intents, "
                "calendar_id, first_response_minutes, next_response_minutes, resolution_minutes, warning_share, "
                "warning_actions, breach_actions, created_at, updated_at) VALUES ($1, 1, true, '[]', '[]', '[]', "
                "'[]', $2, $3, NULL, 480, 0.8, '{}', '{}', $4, $4) RETURNING id", name, calendar, minutes, now)
            self.policies.append((policy, minutes))
        await conn.copy_records_to_table(
            "customers", columns=["id", "name", "language", "created_at", "updated_at"],
            records=[(i, f"Bench {i}", "en", now, now) for i in range(1, self.customers + 1)])

    def created_at(self) -> datetime:
        """A moment of the last 365 days, busier in the Moscow daytime."""
        day = self.now - timedelta(days=self.rng.uniform(0, 365))
        hour = self.rng.choices(range(24), [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 10, 10, 10, 9, 9, 8, 7, 6, 5, 4,
                                            3, 2])[0]
        local = day.astimezone(ZoneInfo(ZONE)).replace(hour=hour, minute=self.rng.randrange(60),
                                                        second=self.rng.randrange(60))
        return min(local.astimezone(UTC), self.now - timedelta(minutes=1))

    def message(self, rows: list[tuple[Any, ...]], ticket_id: int, channel: str, direction: str, kind: str,
                author: int | None, at: datetime, extra: dict[str, Any], intent: str | None) -> None:
        self.message_id += 1
        rows.append((self.message_id, ticket_id, direction, kind, author, channel,
                     f"{channel}-{self.message_id}" if direction == "inbound" else None, "bench text", "[]",
                     intent, "[]", json.dumps(extra), at))

    def ticket(self, ticket_id: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        created = self.created_at()
        channel = pick(rng, CHANNELS)
        intent = pick(rng, INTENTS)
        customer = rng.randrange(1, self.customers + 1)
        messages = out["messages"]
        fate = rng.random()
        team = assignee = first_response = resolved = None
        status, by_bot, reopen = "bot", False, 0
        age = (self.now - created).total_seconds()
        self.message(messages, ticket_id, channel, "inbound", "customer", None, created,
                     {"action": "escalate" if fate >= 0.40 else "answer",
                      "reason": pick(rng, REASONS) if fate >= 0.40 else "faq"}, intent)
        if fate < 0.35:  # the bot answers and the customer goes quiet: resolved by the bot 30-40 min later
            self.message(messages, ticket_id, channel, "outbound", "bot", None, created + timedelta(seconds=2), {},
                         intent)
            if rng.random() < 0.1:  # "thanks"
                self.message(messages, ticket_id, channel, "inbound", "customer", None, created + timedelta(minutes=1),
                             {"action": "answer", "reason": "faq"}, "thanks")
            if age > 2400:
                status, by_bot, resolved = "resolved", True, created + timedelta(minutes=rng.uniform(30, 40))
        elif fate < 0.40:  # still with the bot (a few quiet ones, recent)
            self.message(messages, ticket_id, channel, "outbound", "bot", None, created + timedelta(seconds=2), {},
                         intent)
        else:  # handed to people
            queue = self.queues[sum(map(ord, intent or "")) % len(self.queues)]
            team = self.teams[queue]
            self.message(messages, ticket_id, channel, "outbound", "bot", None, created + timedelta(seconds=2), {},
                         None)
            status = "open"
            wait = lognormal_seconds(rng, 600, 1.4, 3 * 86400)
            if created + timedelta(seconds=wait) < self.now:
                assignee = rng.choice(self.agents[queue])
                first_response = created + timedelta(seconds=wait)
                self.message(messages, ticket_id, channel, "outbound", "agent", assignee, first_response, {}, None)
                if rng.random() < 0.5:  # the customer answers the agent
                    self.message(messages, ticket_id, channel, "inbound", "customer", None,
                                 first_response + timedelta(minutes=rng.uniform(1, 20)),
                                 {"action": "agent", "reason": "with_humans"}, None)
                work = lognormal_seconds(rng, 7200, 1.3, 10 * 86400)
                if rng.random() < 0.2:  # a colleague helps
                    helper = rng.choice(self.agents[queue])
                    self.message(messages, ticket_id, channel, "outbound", "agent", helper,
                                 first_response + timedelta(seconds=work / 2), {}, None)
                if first_response + timedelta(seconds=work) < self.now and rng.random() < 0.95:
                    status, resolved = rng.choice(["resolved", "closed"]), first_response + timedelta(seconds=work)
                    if rng.random() < 0.05:
                        reopen = 1
                        self.message(messages, ticket_id, channel, "inbound", "customer", None,
                                     resolved - timedelta(seconds=work / 4), {"action": "agent",
                                                                               "reason": "with_humans"}, None)
            if rng.random() < 0.5:
                policy, minutes = rng.choice(self.policies)
                due = created + timedelta(minutes=minutes)  # close enough for the bench (office: wall clock)
                met = first_response
                notified = '["first_response:breach"]' if (met is None and due < self.now) or \
                    (met is not None and met > due) else "[]"
                out["slas"].append((ticket_id, policy, created, due, met, created, created + timedelta(hours=8),
                                    resolved, 0.0, 0.0, 0.0, notified, False, None, created))
            if resolved is not None and rng.random() < 0.5:
                answered = rng.random() < 0.55
                sent = resolved + timedelta(hours=1)
                out["surveys"].append((ticket_id, channel, "en", sent, pick(rng, SCORES) if answered else None,
                                       sent + timedelta(minutes=20) if answered else None,
                                       channel if answered else None, False))
        last = max(r[12] for r in messages[-6:] if r[1] == ticket_id)
        out["tickets"].append((ticket_id, customer, f"Bench {ticket_id}", status, "normal", intent, team, assignee,
                               channel, "en", 0, created, last, last, first_response, resolved,
                               resolved if status == "closed" else None, by_bot, reopen))

    async def fill(self, conn: asyncpg.Connection, chunk: int = 50_000) -> None:
        for start in range(1, self.tickets + 1, chunk):
            out: dict[str, list[tuple[Any, ...]]] = {"tickets": [], "messages": [], "slas": [], "surveys": []}
            for ticket_id in range(start, min(self.tickets, start + chunk - 1) + 1):
                self.ticket(ticket_id, out)
            await conn.copy_records_to_table("tickets", columns=[
                "id", "customer_id", "subject", "status", "priority", "intent", "team_id", "assignee_id", "channel",
                "language", "failed_bot_answers", "created_at", "updated_at", "last_customer_message_at",
                "first_response_at", "resolved_at", "closed_at", "resolved_by_bot", "reopen_count"],
                records=out["tickets"])
            await conn.copy_records_to_table("messages", columns=[
                "id", "ticket_id", "direction", "author_kind", "author_user_id", "channel", "external_message_id",
                "text", "attachments", "intent", "entities", "extra", "created_at"], records=out["messages"])
            await conn.copy_records_to_table("ticket_slas", columns=[
                "ticket_id", "policy_id", "started_at", "first_response_due_at", "first_response_met_at",
                "resolution_started_at", "resolution_due_at", "resolution_met_at", "paused_seconds",
                "next_response_paused_seconds", "resolution_paused_seconds", "notified", "reminded", "armed_at",
                "updated_at"], records=out["slas"])
            await conn.copy_records_to_table("csat_surveys", columns=[
                "ticket_id", "channel", "language", "sent_at", "score", "answered_at", "answer_channel", "flagged"],
                records=out["surveys"])
            self.messages_total += len(out["messages"])
            print(f"  filled {min(self.tickets, start + chunk - 1):,} tickets, {self.messages_total:,} messages",
                  flush=True)
        for table in ("customers", "tickets", "messages"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608  (constants)
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("ANALYZE")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await work()  # warm (plans, caches)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - t0) * 1000)
    return pct(samples, 50), pct(samples, 95)


async def changes(url: str, count: int, now: datetime, rng: random.Random) -> None:
    """`count` ticket changes as the app writes them: half resolutions by an agent (status, audit entry), half a
    customer writing again on a ticket (a new message)."""
    conn = await asyncpg.connect(raw_dsn(url))
    try:
        top = await conn.fetchval("SELECT max(id) FROM tickets")
        ids = rng.sample(range(1, top + 1), count)
        resolve, write = ids[: count // 2], ids[count // 2:]
        await conn.execute("UPDATE tickets SET status = 'resolved', resolved_at = $2, updated_at = $2 "
                           "WHERE id = ANY($1::int[]) AND status NOT IN ('resolved', 'closed')", resolve, now)
        await conn.copy_records_to_table("audit_log", columns=[
            "action", "entity_type", "entity_id", "data", "created_at"],
            records=[("ticket.status", "ticket", str(i), '{"new": "resolved"}', now) for i in resolve])
        message = await conn.fetchval("SELECT max(id) FROM messages")
        await conn.copy_records_to_table("messages", columns=[
            "id", "ticket_id", "direction", "author_kind", "channel", "external_message_id", "text", "attachments",
            "entities", "extra", "created_at"],
            records=[(message + n + 1, i, "inbound", "customer", "telegram", f"again-{i}", "again", "[]", "[]",
                      '{"action": "escalate", "reason": "needs_human"}', now) for n, i in enumerate(write)])
        await conn.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT max(id) FROM messages))")
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    name = f"sb_bench_kpi_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url)
        now = datetime.now(UTC)
        filler = Filler(args.tickets, now)
        t0 = time.monotonic()
        conn = await asyncpg.connect(raw_dsn(url))
        try:
            await filler.prepare(conn)
            await filler.fill(conn)
        finally:
            await conn.close()
        fill_s = time.monotonic() - t0
        print(f"filled {args.tickets:,} tickets and {filler.messages_total:,} messages in {fill_s:.0f} s", flush=True)

        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        fold = KpiFold(sessionmaker, SYSTEM_CLOCK, time_zone=ZONE)
        last_shown = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last_shown[0] > 15 or done == total:
                last_shown[0] = time.monotonic()
                print(f"  rebuild {done:,}/{total:,}", flush=True)

        t0 = time.monotonic()
        walked = await fold.rebuild(progress=progress)
        rebuild_s = time.monotonic() - t0
        async with engine.connect() as c:
            sizes = {t: (await c.exec_driver_sql(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608
                     for t in ("kpi_ticket_facts", "kpi_rollups", "kpi_hourly")}

        today = now.astimezone(ZoneInfo(ZONE)).date()
        rows: list[tuple[str, float, float]] = []

        async def report(days: int, group_by: GroupBy) -> None:
            query = KpiQuery(date_from=today - timedelta(days=days - 1), date_to=today, group_by=group_by)
            async with sessionmaker() as session:
                result = await kpis.report(session, query, time_zone=ZONE)
            result.model_dump_json()

        for days in (30, 365):
            for group_by in GroupBy:
                p50, p95 = await timed(args.runs, lambda d=days, g=group_by: report(d, g))
                rows.append((f"report {days} d by {group_by.value}", p50, p95))

        async def behind(days: int, metric: Metric, group_by: GroupBy = GroupBy.day, key: str | None = None) -> None:
            query = KpiQuery(date_from=today - timedelta(days=days - 1), date_to=today, group_by=group_by)
            async with sessionmaker() as session:
                page = await kpis.tickets_behind(session, query, key, metric, time_zone=ZONE)
            assert page.items, (days, metric, key)

        for days, metric, group_by, key in (
                (30, Metric.resolved, GroupBy.day, None), (365, Metric.resolved, GroupBy.day, None),
                (365, Metric.csat_low, GroupBy.channel, "telegram"), (30, Metric.sla_first_response_breached,
                                                                      GroupBy.day, None),
                (365, Metric.reopen, GroupBy.intent, "complaint"), (365, Metric.backlog, GroupBy.day, None)):
            p50, p95 = await timed(args.runs, lambda d=days, m=metric, g=group_by, k=key: behind(d, m, g, k))
            rows.append((f"drill-down {days} d {metric.value}" + (f" {key}" if key else ""), p50, p95))

        async def exported(days: int, group_by: GroupBy, fmt: str) -> None:
            query = KpiQuery(date_from=today - timedelta(days=days - 1), date_to=today, group_by=group_by)
            async with sessionmaker() as session:
                result = await kpis.report(session, query, time_zone=ZONE)
            (export.to_csv if fmt == "csv" else export.to_xlsx)(result, "ru")

        for days, group_by, fmt in ((365, GroupBy.day, "csv"), (365, GroupBy.agent, "csv"),
                                    (365, GroupBy.day, "xlsx")):
            p50, p95 = await timed(args.runs, lambda d=days, g=group_by, f=fmt: exported(d, g, f))
            rows.append((f"export {fmt} {days} d by {group_by.value}", p50, p95))

        async def counted(dimension: str, hours: int, bucket: str) -> None:
            async with sessionmaker() as session:
                await kpis.counts(session, dimension=dimension, start=now - timedelta(hours=hours), end=now,
                                  bucket=bucket, time_zone=ZONE)

        for dimension, hours, bucket in (("intent", 24 * 28, "hour"), ("escalation_reason", 24 * 14, "day"),
                                         ("channel", 24 * 365, "day")):
            p50, p95 = await timed(args.runs, lambda d=dimension, h=hours, b=bucket: counted(d, h, b))
            rows.append((f"counts {dimension} {hours // 24} d by {bucket}", p50, p95))

        # The fold's cost for a burst of changes: written, then folded from the first tick to caught up.
        await changes(url, args.changes, datetime.now(UTC), random.Random(5))
        ticks = fold.stats.ticks
        t0 = time.monotonic()
        while await fold.run_once():
            pass
        fold_s = time.monotonic() - t0
        await engine.dispose()

        load = os.getloadavg()
        print()
        print("| data | tickets | messages | fill (COPY) | rebuild | facts rows | rollup rows | hourly rows |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| a year | {args.tickets:,} | {filler.messages_total:,} | {fill_s:.0f} s | {rebuild_s:.0f} s "
              f"({walked / rebuild_s:,.0f} tickets/s) | {sizes['kpi_ticket_facts']:,} | {sizes['kpi_rollups']:,} | "
              f"{sizes['kpi_hourly']:,} |")
        print()
        print(f"| measure ({args.runs} runs each) | p50 ms | p95 ms |")
        print("|---|---:|---:|")
        for label, p50, p95 in rows:
            print(f"| {label} | {p50:.1f} | {p95:.1f} |")
        print()
        print("| fold job | changes | ticks | time | per change |")
        print("|---|---:|---:|---:|---:|")
        print(f"| {args.changes:,} ticket changes (half resolutions + audit, half new messages) | {args.changes:,} | "
              f"{fold.stats.ticks - ticks} | {fold_s:.2f} s | {fold_s / args.changes * 1000:.2f} ms |")
        print()
        worst = max(p95 for label, _, p95 in rows if label.startswith("report"))
        print(f"slowest report p95: {worst:.1f} ms (target < 1000 ms); load average {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f} on {os.cpu_count()} cores shared with other work")
        print("PASS" if worst < 1000 else "FAIL")
    finally:
        if not args.keep:
            await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_URL, help="a PostgreSQL server URL (a database is made there)")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each measure")
    parser.add_argument("--changes", type=int, default=10_000, help="ticket changes the fold job folds in")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

