"""The tag filter at a year's scale (issue 16): 1,000,000 tickets on PostgreSQL, a common tag (every 10th ticket)
and a rare one (200 tickets), each inbox view's page and capped count with the filter: p50 of the real repository
calls, and the plan (which index the tag is read through).

    nice -n 10 .venv/bin/python bench/tags.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    ... --tickets 200000 (a smaller year) --keep (leave the database: its URL is printed) --reuse URL

A private database is created and dropped. Tickets are written by SQL (generate_series), not through the app:
only their columns matter to the list's query. Target: every p95 < 200 ms (the scale bench's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from bench.pg import migrated_database  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.tags import repository as tag_repository  # noqa: E402
from core.tickets import repository  # noqa: E402
from core.tickets.models import TicketStatus  # noqa: E402
from core.tickets.repository import TicketFilter  # noqa: E402
from core.users.models import Team  # noqa: E402

ACTIVE = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)
DONE = (TicketStatus.resolved, TicketStatus.closed)


FILL = [
    "INSERT INTO customers (id, created_at, updated_at, consent_notices, consent_marketing) "
    "SELECT g, now(), now(), false, false FROM generate_series(1, :customers) g",
    # A year: 2 % active (the newest, mostly), the rest resolved or closed; two queues; some never waited.
    """INSERT INTO tickets (id, customer_id, subject, status, priority, channel, team_id, failed_bot_answers,
         created_at, updated_at, last_customer_message_at, sla_due_at, resolved_by_bot, reopen_count)
       SELECT g, 1 + g % :customers, 't' || g,
              CASE WHEN g > :n - :n / 50 THEN (ARRAY['new', 'open', 'pending'])[1 + g % 3]
                   WHEN g % 3 = 0 THEN 'resolved' ELSE 'closed' END,
              'normal', 'rest', 101 + g % 2, 0,
              now() - make_interval(secs => (:n - g) * 31.5), now() - make_interval(secs => (:n - g) * 31.5),
              CASE WHEN g % 17 = 0 THEN NULL ELSE now() - make_interval(secs => (:n - g) * 31.5) END,
              CASE WHEN g > :n - :n / 50 THEN now() + make_interval(secs => g % 7200) END, false, 0
       FROM generate_series(1, :n) g""",
    "SELECT setval('tickets_id_seq', :n)",
    "INSERT INTO tags (id, name, key, colour, created_at) VALUES (1, 'Common', 'common', 'grey', now()), "
    "(2, 'Rare', 'rare', 'red', now())",
    "INSERT INTO ticket_tags (ticket_id, tag_id, created_at) SELECT g, 1, now() FROM generate_series(10, :n, 10) g",
    "INSERT INTO ticket_tags (ticket_id, tag_id, created_at) "
    "SELECT g, 2, now() FROM generate_series(:n / 200, :n, :n / 200) g",
    "ANALYZE",
]

CASES: list[tuple[str, TicketFilter, str]] = [
    ("active, common tag", TicketFilter(status=ACTIVE, tags=("common",)), "waiting"),
    ("active, rare tag", TicketFilter(status=ACTIVE, tags=("rare",)), "waiting"),
    ("active, queue + common tag, by SLA", TicketFilter(status=ACTIVE, team_slug="bench-a", tags=("common",)), "due"),
    ("done, common tag", TicketFilter(status=DONE, tags=("common",)), "waiting"),
    ("done, rare tag", TicketFilter(status=DONE, tags=("rare",)), "waiting"),
    ("all, rare tag, newest", TicketFilter(tags=("rare",)), "newest"),
    ("all, common + rare, newest", TicketFilter(tags=("common", "rare")), "newest"),
    ("all, common tag, updated", TicketFilter(tags=("common",)), "updated"),
]


def _indexes(plan: dict[str, Any]) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _indexes(child)
    return found


async def run(url: str, repeat: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    print(f"{'case':38} {'page p50':>9} {'p95':>7} {'count p50':>10} {'rows':>5}  tag read through")
    for name, flt, sort in CASES:
        pages, counts = [], []
        rows = 0
        async with sessionmaker() as session:
            flt = replace(flt, tag_ids=await tag_repository.ids_of(session, flt.tags))  # as the service does
            for i in range(repeat + 1):
                started = time.perf_counter()
                found, _more = await repository.list_tickets(session, flt, limit=50, sort=sort)
                page_ms = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                await repository.count_capped(session, repository.conditions(flt))
                count_ms = (time.perf_counter() - started) * 1000
                if i:  # the first is a warm-up
                    pages.append(page_ms)
                    counts.append(count_ms)
                rows = len(found)
            stmt = repository.page_statement(flt, limit=51, sort=sort)
            dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            plan = (await session.execute(text("EXPLAIN (FORMAT JSON) " + sql))).scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
        used = sorted(i for i in _indexes(plan[0]["Plan"]) if "tag" in i)
        p95 = statistics.quantiles(pages, n=20)[-1] if len(pages) > 1 else pages[0]
        print(f"{name:38} {statistics.median(pages):7.1f}ms {p95:5.1f}ms {statistics.median(counts):8.1f}ms "
              f"{rows:5}  {', '.join(used) or '-'}")
    await engine.dispose()


async def fill(url: str, tickets: int) -> None:
    engine = create_engine(url)
    started = time.perf_counter()
    async with create_sessionmaker(engine)() as session, session.begin():
        session.add_all([Team(id=101, slug="bench-a", name="Bench A"), Team(id=102, slug="bench-b", name="Bench B")])
    async with engine.begin() as conn:
        for sql in FILL:
            await conn.execute(text(sql), {"n": tickets, "customers": max(1000, tickets // 5)})
    await engine.dispose()
    print(f"{tickets:,} tickets filled in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="a server URL (a private database is made on it)")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", help="measure a database a --keep run left (its URL)")
    args = parser.parse_args()
    if args.reuse:
        asyncio.run(run(args.reuse, args.repeat))
        return
    with migrated_database(args.postgres, "sb_tags", keep=args.keep) as url:
        if args.keep:
            print("kept:", url)
        asyncio.run(fill(url, args.tickets))
        asyncio.run(run(url, args.repeat))


if __name__ == "__main__":
    main()
