"""What the hand-over and the declared intent actions cost: the expected-wait reads on a year of tickets, and the
SQL statements of one ingest batch (the pipeline reads its lookups once per batch, never per message).

On a private PostgreSQL database it fills `--tickets` tickets over five queues (most resolved with a first
response, some open), ANALYZEs, and times `core.handover.service.queue_states` for every queue (what one batch with
escalations reads), with the plans of its queries. Then it ingests batches of 64 messages (FAQ answers, then
escalations) through the pipeline and counts the statements each batch sends.

    .venv/bin/python bench/handover.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test [--tickets N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select, text  # noqa: E402 - after the path is set
from sqlalchemy.engine import make_url  # noqa: E402

from bench.ingest import admin_sql_async  # noqa: E402
from core.config import CoreSettings  # noqa: E402
from core.db.migrate import upgrade_async  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.handover import service as handover  # noqa: E402
from core.ingest.pipeline import IngestPipeline, Parsed  # noqa: E402
from core.ingest.schemas import InboundMessage, SenderInfo  # noqa: E402
from core.users.models import Team  # noqa: E402
from nlu.protocol import KeywordEngine  # noqa: E402

FILL = """
INSERT INTO customers (name, language, created_at, updated_at)
SELECT 'bench ' || g, 'ru', now(), now() FROM generate_series(1, 1000) g;
INSERT INTO tickets (customer_id, subject, status, priority, team_id, channel, failed_bot_answers, created_at,
                     updated_at, first_response_at, resolved_by_bot)
SELECT (SELECT min(id) FROM customers) + g % 1000, 'bench', CASE WHEN g % 50 = 0 THEN 'open' ELSE 'resolved' END,
       'normal', (SELECT min(id) FROM teams) + g % 5, 'rest', 0,
       now() - make_interval(mins => g / 2), now(),
       CASE WHEN g % 50 = 0 THEN NULL ELSE now() - make_interval(mins => g / 2) + make_interval(mins => 5 + g % 40)
       END, false
FROM generate_series(1, :n) g;
"""


async def reads(url: str, tickets: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    started = time.perf_counter()
    async with engine.begin() as conn:
        for statement in FILL.strip().split(";\n"):
            if statement.strip():
                await conn.execute(text(statement), {"n": tickets})
        await conn.execute(text("ANALYZE"))
    print(f"filled {tickets:,} tickets in {time.perf_counter() - started:.1f} s")
    async with sessionmaker() as session:
        teams = list((await session.scalars(select(Team))).all())
        timings = []
        for _ in range(30):
            t0 = time.perf_counter()
            states = await handover.queue_states(session, teams)
            timings.append((time.perf_counter() - t0) * 1000)
        for team in teams:
            state = states[team.id]
            print(f"  {team.slug:10} open unassigned {state.open_unassigned:6}  history "
                  f"{len(state.recent_first_responses):2}  expected wait {handover.expected_wait(state)}")
        print(f"queue_states for {len(teams)} queues: median {statistics.median(timings):.2f} ms, "
              f"max {max(timings):.2f} ms (30 runs)")
        for sql in (
            "SELECT count(*) FROM (SELECT team_id FROM tickets WHERE status = 'open' AND team_id = :team "
            "AND assignee_id IS NULL AND merged_into_id IS NULL ORDER BY created_at LIMIT :cap) AS load",
            "SELECT team_id, created_at, first_response_at FROM tickets WHERE team_id = :team "
            "AND first_response_at IS NOT NULL ORDER BY first_response_at DESC LIMIT 20",
        ):
            plan = (await session.execute(text("EXPLAIN ANALYZE " + sql),
                                          {"team": teams[0].id, "cap": handover.LOAD_CAP})).scalars().all()
            print("  " + sql[:100] + " ...")
            for line in plan:
                print("    " + line)
    await engine.dispose()


async def statements_per_batch(url: str) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    counted: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    nlu = KeywordEngine({"greeting": ["hello"], "internet_down": ["internet"]})
    pipeline = IngestPipeline(CoreSettings(), responses=lambda i, _l: "Hello!" if i == "greeting" else None)
    run = uuid.uuid4().hex[:6]
    for label, text_ in (("64 FAQ answers (new customers)", "hello"), ("64 escalations (new customers)",
                                                                        "my internet is down")):
        items = [Parsed(InboundMessage(channel="rest", external_message_id=f"{run}-{label[:6]}-{i}",
                                       sender=SenderInfo(external_id=f"{run}-{label[:6]}-{i}"), text=text_,
                                       thread_key=f"{run}-{label[:6]}-{i}"), await nlu.parse(text_))
                 for i in range(64)]
        counted.clear()
        async with sessionmaker() as session, session.begin():
            results = await pipeline.write(session, items)
        actions = {r.action for r in results}
        print(f"{label}: {len(counted)} statements for the batch ({len(counted) / 64:.2f} per message), "
              f"actions {sorted(actions)}")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    args = parser.parse_args()
    name = f"sb_bench_handover_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    await admin_sql_async(args.postgres, f'CREATE DATABASE "{name}"')
    try:
        await upgrade_async(url)
        await statements_per_batch(url)
        await reads(url, args.tickets)
    finally:
        await admin_sql_async(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
