"""One automatic-assignment run on a year of data: 1,000,000 tickets on PostgreSQL, a few hundred waiting.

Fills a private database with `--tickets` tickets (all but `--waiting` closed and assigned, spread over the
queues), 20 online agents in the measured queue, then times `run_queue` (returns + hand-out, one transaction)
with nothing to hand out (everyone full) and with a full batch to hand out, and prints the plan of the
waiting-tickets query (it should be a scan of the partial index ix_tickets_waiting, not of the table).

    .venv/bin/python bench/assignment.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402 - after the path is set
from sqlalchemy.engine import make_url  # noqa: E402

from bench.ingest import admin_sql_async  # noqa: E402
from core.assignment import repository, service  # noqa: E402
from core.db.base import utcnow  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402

OFFLINE = timedelta(seconds=90)


async def fill(url: str, tickets: int, waiting: int) -> int:
    engine = create_engine(url)
    async with engine.begin() as conn:
        team_id = int((await conn.execute(text("SELECT id FROM teams WHERE slug = 'general'"))).scalar_one())
        await conn.execute(text("INSERT INTO customers (name, created_at, updated_at) VALUES ('bench', now(), now())"))
        await conn.execute(text(
            "INSERT INTO users (email, name, password_hash, role, language, team_id, capacity, is_active, "
            "created_at, last_seen_at, languages, away) SELECT 'agent' || g || '@bench.example', 'agent ' || g, "
            "'x', 'agent', 'en', :team, 10, true, now(), now(), '[\"ru\", \"en\"]', false "
            "FROM generate_series(1, 20) g"), {"team": team_id})
        # Closed history over every queue, assigned to the agents; then the waiting ones in `general`.
        await conn.execute(text(
            "INSERT INTO tickets (customer_id, subject, status, priority, team_id, assignee_id, channel, language, "
            "failed_bot_answers, created_at, updated_at) "
            "SELECT 1, 's', 'closed', 'normal', (SELECT id FROM teams ORDER BY id OFFSET g % 5 LIMIT 1), "
            "(SELECT min(id) FROM users) + g % 20, 'rest', 'ru', 0, now() - (g || ' seconds')::interval, now() "
            "FROM generate_series(1, :n) g"), {"n": tickets - waiting})
        await conn.execute(text(
            "INSERT INTO tickets (customer_id, subject, status, priority, team_id, channel, language, "
            "failed_bot_answers, created_at, updated_at) "
            "SELECT 1, 's', 'open', CASE WHEN g % 10 = 0 THEN 'urgent' ELSE 'normal' END, :team, 'rest', "
            "CASE WHEN g % 2 = 0 THEN 'ru' ELSE 'en' END, 0, now() - (g || ' seconds')::interval, now() "
            "FROM generate_series(1, :n) g"), {"n": waiting, "team": team_id})
        await conn.execute(text("UPDATE teams SET assignment_mode = 'least_loaded' WHERE id = :team"),
                           {"team": team_id})
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    await engine.dispose()
    return team_id


async def measure(url: str, team_id: int, batch: int, rounds: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    stmt = repository.waiting_query(team_id, batch, None).with_for_update(skip_locked=True)
    compiled = stmt.compile(dialect=engine.dialect)
    args = ", ".join(str(v) if isinstance(v, int) else f"'{v}'"
                     for v in (compiled.params[name] for name in compiled.positiontup or []))
    async with engine.connect() as conn:
        # The plan the prepared statement gets once PostgreSQL switches it to a generic plan (the worst case: the
        # partial index must be provable from the statement itself, not from the values of its parameters).
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql(f"PREPARE waiting AS {compiled}")
        plan = [row[0] for row in await conn.exec_driver_sql(f"EXPLAIN EXECUTE waiting({args})")]
        await conn.rollback()
    print("plan of the waiting-tickets query:")
    for line in plan:
        print("   ", line)

    async def one_run() -> tuple[float, int]:
        started = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            result = await service.run_queue(session, team_id, utcnow(), OFFLINE, batch)
        return (time.perf_counter() - started) * 1000, result.assigned

    ms, assigned = await one_run()
    print(f"hand-out run: {assigned} tickets assigned in {ms:.1f} ms ({ms / max(assigned, 1):.2f} ms a ticket)")
    idle = []
    for _ in range(rounds):
        ms, assigned = await one_run()
        assert assigned == 0, "everyone is full: nothing more to assign"
        idle.append(ms)
    idle.sort()
    print(f"idle run (agents full, tickets waiting), {rounds} runs: median {statistics.median(idle):.1f} ms, "
          f"p99 {idle[max(0, int(len(idle) * 0.99) - 1)]:.1f} ms")
    async with sessionmaker() as session:
        total = (await session.execute(text("SELECT count(*) FROM tickets"))).scalar_one()
    print(f"tickets in the table: {total}")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="a PostgreSQL URL; a private database is made on it")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=500)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    name = f"sb_bench_assign_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    await admin_sql_async(args.postgres, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url)
        started = time.perf_counter()
        team_id = await fill(url, args.tickets, args.waiting)
        print(f"filled {args.tickets} tickets ({args.waiting} waiting) in {time.perf_counter() - started:.0f} s")
        await measure(url, team_id, args.batch, args.rounds)
    finally:
        await admin_sql_async(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
