"""The SLA timer worker under 100,000 open tickets with running SLAs, on PostgreSQL.

    .venv/bin/python bench/sla.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A private database (`sb_bench_sla_<random>`, created here and dropped at the end) gets --tickets open tickets in
bulk (COPY): each has its SLA clock (core/sla) and its one pending timer (a due task of kind "sla"). --fire of them
reach their first-response warning at moments spread evenly over --window seconds starting a few seconds after the
worker starts; the others are due hours later (running, not firing: they are what the worker must not trip over).
The real worker runs on the real clock: the due-task runner (core/jobs/tasks.py) as the app starts it (a job on the
job registry, polling every --poll seconds) with the SLA handler (core/sla/timers.py). After the window the worker
idles for --idle seconds with every other timer still pending; its CPU is measured over that period.

Every ticket has its customer's channel identity, so each first-response warning also writes the customer's one
reminder (a message and its outbox row) as in production; warnings fall at the policy's share (80 %) of each target.
It prints: tickets, events fired (expected --fire), events/s while firing, the delay between each alert's due moment
and its history entry (p50/p95/p99/max), duplicates (an alert recorded twice for one ticket; must be 0), and the
worker's CPU as a share of one core while idle. Targets (issue 11): p99 < 5 s, no duplicate, idle CPU < 20 %.
It also times the console's inbox page sorted by SLA due time and checks PostgreSQL walks its partial index.
A burst (`--window 1`: every alert due at once) shows the worker's capacity in events/s instead; its delays then
are the backlog's, by design.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import admin, raw_dsn  # noqa: E402 - after the path is set
from core.clock import SYSTEM_CLOCK  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.jobs import JobRegistry  # noqa: E402
from core.jobs.tasks import DueTaskRunner, TaskHandlers  # noqa: E402
from core.sla.timers import SlaTimers  # noqa: E402
from core.tickets import repository as ticket_repo  # noqa: E402
from core.tickets.repository import TicketFilter  # noqa: E402
from core.tickets.service import ACTIVE_STATUSES  # noqa: E402

FIRST_RESPONSE_MINUTES, RESOLUTION_MINUTES, WARNING_SHARE = 240, 2880, 0.8  # the bench policy
DEFAULT_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def fill(url: str, tickets: int, fire: int, start: datetime, window: float) -> None:
    """Customers, one 24/7 calendar and policy, the tickets, their clocks and timers: COPY, a table at a time."""
    conn = await asyncpg.connect(raw_dsn(url))
    try:
        now = datetime.now(UTC)
        team = await conn.fetchval("SELECT id FROM teams WHERE slug = 'billing'")
        calendar = await conn.fetchval(
            "INSERT INTO calendars (name, time_zone, weekly, created_at, updated_at) VALUES ($1, 'UTC', $2, $3, $3) "
            "RETURNING id", "24/7 bench",
            json.dumps({d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}), now)
        policy = await conn.fetchval(
            "INSERT INTO sla_policies (name, position, enabled, queue_ids, priorities, channels, intents, calendar_id,"
            " first_response_minutes, next_response_minutes, resolution_minutes, warning_share, warning_actions,"
            " breach_actions, created_at, updated_at) VALUES ('bench', 1, true, '[]', '[]', '[]', '[]', $1, $2,"
            " NULL, $3, $4, '{}', '{}', $5, $5) RETURNING id", calendar, FIRST_RESPONSE_MINUTES, RESOLUTION_MINUTES,
            WARNING_SHARE, now)
        customers = max(1, tickets // 10)
        await conn.copy_records_to_table("customers", columns=["id", "name", "language", "created_at", "updated_at"],
                                         records=[(i, f"Bench {i}", "en", now, now) for i in range(1, customers + 1)])
        # Each customer's one channel identity (id = the customer's): the tickets' reply address, so the first
        # response warning's reminder to the customer is written (message and outbox) as in production.
        await conn.copy_records_to_table("channel_identities", columns=[
            "id", "customer_id", "channel", "external_id", "verified", "created_at"],
            records=[(i, i, "rest", f"bench-{i}", False, now) for i in range(1, customers + 1)])
        rng = random.Random(11)
        order = list(range(1, tickets + 1))
        rng.shuffle(order)
        firing = set(order[:fire])
        step = window / max(1, fire)
        warn_at: dict[int, datetime] = {}
        for n, ticket_id in enumerate(order[:fire]):
            warn_at[ticket_id] = start + timedelta(seconds=n * step)
        for ticket_id in order[fire:]:
            warn_at[ticket_id] = start + timedelta(hours=3, seconds=rng.uniform(0, 3600))
        ticket_rows, sla_rows, task_rows = [], [], []
        first_response, resolution = timedelta(minutes=FIRST_RESPONSE_MINUTES), timedelta(minutes=RESOLUTION_MINUTES)
        for ticket_id in range(1, tickets + 1):
            warn = warn_at[ticket_id]
            started = warn - first_response * WARNING_SHARE  # the warning at the policy's share of the target
            due = started + first_response
            customer = (ticket_id % customers) + 1
            ticket_rows.append((ticket_id, customer, customer, f"Bench {ticket_id}", "open", "normal", team, "rest",
                                "en", 0, started, started, started, due))
            sla_rows.append((ticket_id, policy, started, warn, due, started, started + resolution * WARNING_SHARE,
                             started + resolution, 0.0, 0.0, 0.0, "[]", False, warn, started))
            task_rows.append((f"ticket:{ticket_id}", "sla", warn, "{}", "pending", 0, now))
        await conn.copy_records_to_table("tickets", columns=[
            "id", "customer_id", "identity_id", "subject", "status", "priority", "team_id", "channel", "language",
            "failed_bot_answers", "created_at", "updated_at", "last_customer_message_at", "sla_due_at"],
            records=ticket_rows)
        await conn.copy_records_to_table("ticket_slas", columns=[
            "ticket_id", "policy_id", "started_at", "first_response_warn_at", "first_response_due_at",
            "resolution_started_at", "resolution_warn_at", "resolution_due_at", "paused_seconds",
            "next_response_paused_seconds", "resolution_paused_seconds", "notified", "reminded", "armed_at",
            "updated_at"], records=sla_rows)
        await conn.copy_records_to_table("scheduled_tasks", columns=[
            "key", "kind", "due_at", "payload", "state", "attempts", "created_at"], records=task_rows)
        for table in ("customers", "channel_identities", "tickets"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608  (constant names)
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("ANALYZE")
        assert len(firing) == fire
    finally:
        await conn.close()


async def inbox_page(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """The console's first inbox page sorted by due time (the repository's own query, relations joined): how long
    it takes, and whether PostgreSQL walks the partial index for it."""
    flt = TicketFilter(status=ACTIVE_STATUSES)
    async with sessionmaker() as session:
        await ticket_repo.list_tickets(session, flt, limit=50, offset=0, sort="due")  # warm
        started = time.perf_counter()
        rows, _ = await ticket_repo.list_tickets(session, flt, limit=50, offset=0, sort="due")
        took = (time.perf_counter() - started) * 1000
        stmt = ticket_repo.page_statement(flt, limit=50, offset=0, sort="due")
        compiled = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in (await session.execute(text(f"EXPLAIN {compiled}"))).all())
    dues = [t.sla_due_at for t in rows]
    ordered = all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(dues))
    index = "ix_tickets_active_sla_due" in plan
    return (f"{took:.1f} ms for page and total count, {'sorted' if ordered else 'NOT SORTED'}, "
            f"{'walks ix_tickets_active_sla_due' if index else 'no index walk: ' + plan[:300]}")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def run(args: argparse.Namespace) -> None:
    name = f"sb_bench_sla_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url)
        lead = 8.0  # the worker is up and idle before the first alert is due
        t_fill = time.monotonic()
        start = datetime.now(UTC) + timedelta(seconds=lead + args.tickets / 20_000)
        await fill(url, args.tickets, args.fire, start, args.window)
        print(f"filled {args.tickets} tickets in {time.monotonic() - t_fill:.1f} s", flush=True)
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        inbox = await inbox_page(sessionmaker)
        handlers = TaskHandlers()
        SlaTimers(SYSTEM_CLOCK).register(handlers)
        registry = JobRegistry(SYSTEM_CLOCK, engine=engine)
        runners = [DueTaskRunner(sessionmaker, handlers, clock=SYSTEM_CLOCK, runner_id=f"bench-{i}",
                                 batch_size=args.batch, concurrency=args.concurrency) for i in range(args.runners)]
        for i, runner in enumerate(runners):
            job = runner.job(args.poll)
            registry.start(job if i == 0 else type(job)(**{**job.__dict__, "name": f"due-tasks-{i}"}))
        end_of_window = start + timedelta(seconds=args.window)
        busy_cpu0, busy_wall0 = time.process_time(), time.monotonic()
        # Fire until every due alert fired (or a minute past the window), then idle.
        while datetime.now(UTC) < end_of_window + timedelta(seconds=60):
            await asyncio.sleep(0.5)
            if datetime.now(UTC) > end_of_window and sum(r.stats.fired for r in runners) >= args.fire:
                break
        fired_at = datetime.now(UTC)
        busy_cpu = (time.process_time() - busy_cpu0) / (time.monotonic() - busy_wall0) * 100
        await asyncio.sleep(2)  # settle
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(args.idle)
        idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100
        await registry.stop(deadline=5)
        async with sessionmaker() as session:
            rows = (await session.execute(text(
                "SELECT entity_id, action, data->>'target', (data->>'due_at')::timestamptz, created_at "
                "FROM audit_log WHERE action LIKE 'sla.%'"))).all()
            pending = await session.scalar(text("SELECT count(*) FROM scheduled_tasks WHERE state = 'pending'"))
            reminders = await session.scalar(text("SELECT count(*) FROM messages WHERE intent = 'sla_reminder'"))
            queued = await session.scalar(text("SELECT count(*) FROM outbox"))
        await engine.dispose()
        seen: dict[tuple[str, str, str], int] = {}
        delays = []
        for entity, action, target, due, created in rows:
            seen[(entity, action, target)] = seen.get((entity, action, target), 0) + 1
            delays.append((created - due).total_seconds())
        duplicates = sum(n - 1 for n in seen.values())
        first = min((r[4] for r in rows), default=start)
        last = max((r[4] for r in rows), default=start)
        rate = len(rows) / max(0.001, (last - first).total_seconds())
        load = os.getloadavg()
        print()
        print("| tickets | events fired | events/s | delay p50 | p95 | p99 | max | duplicates | idle CPU "
              "(% of one core) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.tickets:,} | {len(rows):,} of {args.fire:,} | {rate:,.0f} | {pct(delays, 50):.2f} s | "
              f"{pct(delays, 95):.2f} s | {pct(delays, 99):.2f} s | {max(delays, default=float('nan')):.2f} s | "
              f"{duplicates} | {idle_cpu:.1f} % |")
        print()
        print(f"window {args.window:.0f} s ({args.fire / args.window:,.0f} alerts due per second), poll "
              f"{args.poll} s, batch {args.batch} in {args.concurrency} parts, runners {args.runners}; timers "
              f"still pending after the run: {pending:,} (the tickets not due in the window, and the re-armed "
              "breaches)")
        print(f"customer reminders written with the warnings: {reminders:,} messages, {queued:,} in the outbox")
        print(f"inbox page sorted by SLA due time (50 of {args.tickets:,} open tickets): {inbox}")
        print(f"worker CPU from start to the last alert: {busy_cpu:.0f} % of one core")
        print(f"idle measured over {args.idle:.0f} s; fired by {fired_at.isoformat(timespec='seconds')}; load "
              f"average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
        for runner in runners:
            print(f"runner {runner.runner_id}: fired {runner.stats.fired}, retried {runner.stats.retried}, failed "
                  f"{runner.stats.failed}, last error {runner.stats.last_error}")
        print("PASS" if (pct(delays, 99) < 5 and duplicates == 0 and idle_cpu < 20 and len(rows) == args.fire)
              else "FAIL")
    finally:
        await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_URL, help="a PostgreSQL server URL (a database is made there)")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--fire", type=int, default=20_000, help="tickets whose warning falls in the window")
    parser.add_argument("--window", type=float, default=200.0, help="seconds over which their warnings are due "
                        "(default: 100 alerts/s; --window 1 is a burst, measuring the worker's capacity)")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    parser.add_argument("--poll", type=float, default=1.0, help="the runner's poll interval (the app's "
                        "due_tasks_poll_seconds)")
    parser.add_argument("--batch", type=int, default=200, help="tasks claimed per batch")
    parser.add_argument("--concurrency", type=int, default=4, help="parts of a batch fired at once")
    parser.add_argument("--runners", type=int, default=1, help="due-task runners (instances) in this process")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
