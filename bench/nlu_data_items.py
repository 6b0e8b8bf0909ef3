"""GET /admin/nlu/data-items over a big lookup table: 50,000 cities on PostgreSQL (and a few smaller tables), the
first page and a page deep in the set, by keyset cursor, against reading every value (what the endpoint did before
it paged). p50/p95 of the service call with the rows turned into the API's JSON, and the plan of a deep page.

    nice -n 10 .venv/bin/python bench/nlu_data_items.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    ... --values 200000 --repeat 15 (without --postgres: an SQLite file)
    ... --index-before-0037 (the index as it was before migration 0037: (kind, name, position), for comparison)

A private database is created and dropped; values are written by SQL (generate_series), not through the app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from bench.pg import migrated_database  # noqa: E402
from core import paging  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.nlu_admin import editing, repository  # noqa: E402
from core.nlu_admin.models import NluDataItem  # noqa: E402
from core.nlu_admin.schemas import DataItemPage, DataItemRead  # noqa: E402

FILL = [
    # The big one: `city`, 50,000 values; ten small lookups, 2,000 synonym variants, 50 regexes around it.
    "INSERT INTO nlu_data_items (kind, name, value, position) "
    "SELECT 'lookup', 'city', 'City ' || lpad(g::text, 6, '0'), g FROM generate_series(0, :n - 1) g",
    "INSERT INTO nlu_data_items (kind, name, value, position) "
    "SELECT 'lookup', 'table_' || (g / 100), 'value ' || g, g % 100 FROM generate_series(0, 999) g",
    "INSERT INTO nlu_data_items (kind, name, value, position) "
    "SELECT 'synonym', 'canonical ' || (g / 10), 'variant ' || g, g % 10 FROM generate_series(0, 1999) g",
    "INSERT INTO nlu_data_items (kind, name, value, position) "
    "SELECT 'regex', 'pattern_' || g, '[0-9]{' || (g + 1) || '}', 0 FROM generate_series(0, 49) g",
]


def _page_json(page: editing.ItemPage, limit: int) -> str:
    return DataItemPage(items=[DataItemRead.model_validate(i) for i in page.items], limit=limit,
                        next_cursor=page.next_cursor).model_dump_json()


async def fill(url: str, values: int, old_index: bool) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        if old_index:
            await conn.execute(text("DROP INDEX ix_nlu_data_items_kind"))
            await conn.execute(text("CREATE INDEX ix_nlu_data_items_kind ON nlu_data_items (kind, name, position)"))
        for sql in FILL:
            await conn.execute(text(sql), {"n": values})
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE nlu_data_items"))
    await engine.dispose()


async def run(url: str, values: int, repeat: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        deep = (await session.scalars(select(NluDataItem).where(NluDataItem.kind == "lookup", NluDataItem.name
                                                                 == "city").order_by(NluDataItem.position)
                                      .offset(values - 2000).limit(1))).one()
        deep_cursor = paging.encode_cursor(editing.DATA_ITEMS_CURSOR, deep.kind, deep.name, deep.position, deep.id)

    def page(limit: int, cursor: str | None = None, **flt: Any) -> Callable[[AsyncSession], Awaitable[int]]:
        async def call(session: AsyncSession) -> int:
            found = await editing.list_items(session, cursor=cursor, limit=limit, **flt)
            return len(_page_json(found, limit))
        return call

    async def everything(session: AsyncSession) -> int:
        rows = await repository.data_items(session)
        return len(json.dumps([DataItemRead.model_validate(i).model_dump() for i in rows]))

    cases: list[tuple[str, Callable[[AsyncSession], Awaitable[int]]]] = [
        ("before: every value, one list", everything),
        ("first page, limit 1000", page(1000)),
        ("deep page (city, 2,000 from its end), 1000", page(1000, deep_cursor)),
        ("deep page, limit 5000", page(5000, deep_cursor)),
        ("kind=lookup name=city, deep, 1000", page(1000, deep_cursor, kind="lookup", name="city")),
        ("q=city 0499 (100 hits), first page", page(1000, q="city 0499")),
        ("q=no such text (0 hits)", page(1000, q="no such text")),
    ]
    print(f"{'case':44} {'p50':>8} {'p95':>8} {'JSON':>10}")
    for name, call in cases:
        times = []
        size = 0
        async with sessionmaker() as session:
            for i in range(repeat + 1):
                started = time.perf_counter()
                size = await call(session)
                if i:  # the first is a warm-up
                    times.append((time.perf_counter() - started) * 1000)
        p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
        print(f"{name:44} {statistics.median(times):6.1f}ms {p95:6.1f}ms {size / 1024:8.0f}KB")
    if engine.dialect.name == "postgresql":
        for label, after in (("first page", None), ("deep page", (deep.kind, deep.name, deep.position, deep.id))):
            stmt = repository.data_item_page_statement(kind=None, name=None, needle="", after=after, limit=1001)
            sql = str(stmt.compile(dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                                   compile_kwargs={"literal_binds": True}))
            async with sessionmaker() as session:
                plan = (await session.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql))).scalars().all()
            print(f"plan of the {label}:\n  " + "\n  ".join(plan))
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a server URL (a private database is made on it)")
    parser.add_argument("--values", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--index-before-0037", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with migrated_database(args.postgres, "sb_nlu_items") as url:
        asyncio.run(fill(url, args.values, args.index_before_0037))
        asyncio.run(run(url, args.values, args.repeat))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
