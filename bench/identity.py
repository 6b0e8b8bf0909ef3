"""Identity at scale (issue 15 item 4: "cheap at 200,000 customers"): the suggested-duplicates list, the verified
contact lookup of identity linking, a merge and its un-merge.

    .venv/bin/python bench/identity.py                        # SQLite (a temporary file)
    .venv/bin/python bench/identity.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A fresh database (a temporary SQLite file, or a private PostgreSQL database `sb_bench_identity_<random>` dropped at
the end) gets --customers customers, each with an identity; 1 % share an e-mail with another, 1 % a phone (written
another way), a fifth are merged or erased. The contact keys are set as the ORM sets them. Each operation runs
--repeat times; the table gives the median and the slowest, and the load of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import migrated_database  # noqa: E402 - after the path is set
from core.customers import repository, service  # noqa: E402
from core.customers.models import ChannelIdentity, Customer, email_key, phone_key  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402


def row(c: int, now: datetime) -> dict[str, Any]:
    email = f"c{c}@example.com" if c % 100 else f"C{c - 1}@Example.com"  # 1 %: the previous customer's address
    phone = f"+7 912 {c:07d}" if c % 100 != 50 else f"8912{c - 1:07d}"  # 1 %: the previous one's, another way
    return {"id": c, "name": f"C{c}", "email": email, "phone": phone, "email_key": email_key(email),
            "phone_key": phone_key(phone), "language": "ru", "consent_notices": True, "consent_marketing": False,
            "merged_into_id": c - 1 if c % 10 == 3 else None, "erased_at": now if c % 10 == 7 else None,
            "created_at": now, "updated_at": now}


async def timed(label: str, repeat: int, fn: Callable[[], Awaitable[Any]]) -> None:
    times = []
    result: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<46}{statistics.median(times):>10.1f}{max(times):>10.1f}  {result}")


async def run(url: str, customers: int, repeat: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessionmaker() as s, s.begin():
        step = 5000
        for i in range(1, customers + 1, step):
            ids = range(i, min(i + step, customers + 1))
            await s.execute(insert(Customer), [row(c, now) for c in ids])
            await s.execute(insert(ChannelIdentity), [
                {"customer_id": c, "channel": "rest", "external_id": f"x{c}", "verified": c % 2 == 0,
                 "created_at": now} for c in ids])
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a table that took 200,000 rows: statistics, and the visibility map an index-only
        # scan needs (the duplicates' GROUP BY reads only the index then).
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE customers")
            await conn.exec_driver_sql("VACUUM ANALYZE channel_identities")
    print(f"database: {make_url(url).get_backend_name()}; {customers} customers; "
          f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1/5 min), {os.cpu_count()} cores")
    print(f"{'operation':<46}{'median ms':>10}{'max ms':>10}  result")

    async def first_page() -> str:
        async with sessionmaker() as s:
            groups, cursor = await service.duplicates(s, limit=50)
        return f"{len(groups)} groups, next {cursor}"

    async def third_page() -> str:
        async with sessionmaker() as s:
            _, cursor = await service.duplicates(s, limit=50)
            _, cursor = await service.duplicates(s, limit=50, after=cursor)
            groups, cursor = await service.duplicates(s, limit=50, after=cursor)
        return f"{len(groups)} groups"

    async def lookup() -> str:
        async with sessionmaker() as s:
            found = await repository.find_verified_customer(s, f"C{customers // 2 + 2}@example.com ", "+79120000001")
        return f"customer {found.id if found else None}"

    async def merge_and_undo() -> str:
        async with sessionmaker() as s, s.begin():
            a, b = customers - 11, customers - 12  # live, unmerged, not erased
            await service.merge(s, a, b, None)
            record = (await repository.merges_of(s, b))[0]
            await service.unmerge(s, record.id, None)
            await s.execute(select(1))
        return "merged and undone"

    await timed("duplicates: first page (50 groups)", repeat, first_page)
    await timed("duplicates: pages 1-3 by cursor", repeat, third_page)
    await timed("verified contact lookup (linking)", repeat, lookup)
    await timed("merge + un-merge (one transaction)", max(1, repeat // 2), merge_and_undo)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a private database is made on it)")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with migrated_database(args.postgres, "sb_bench_identity") as url:
        asyncio.run(run(url, args.customers, args.repeat))


if __name__ == "__main__":
    main()
