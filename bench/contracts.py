"""The contract CSV import: 100,000 rows in one all-or-nothing transaction, reminders armed (issue 15: < 60 s).

    .venv/bin/python bench/contracts.py                        # SQLite (a temporary file)
    .venv/bin/python bench/contracts.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A fresh database (a temporary SQLite file, or a private PostgreSQL database `sb_bench_contracts_<random>` dropped at
the end) gets --customers customers; a CSV of --rows contracts (customers by id, e-mail and phone in turn, end dates
spread over two years so most contracts arm all three reminders) is imported through the same code as
`POST /contracts/import` and `switchboard contracts import`. Then the same file again (every row an update, no
reminder armed twice), and a file with one bad row at the end (nothing written). It prints each run's time, the
CPU time of this process (the importer's own share, apart from the database server's and other processes'), rows/s
and the reminder tasks armed, and the load of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import migrated_database  # noqa: E402 - after the path is set
from core.config import CoreSettings  # noqa: E402
from core.contracts import importer  # noqa: E402
from core.contracts.models import Contract  # noqa: E402
from core.customers.models import Customer  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.jobs.models import ScheduledTask  # noqa: E402


def make_csv(rows: int, customers: int, today: date) -> str:
    rnd = random.Random(15)
    lines = ["number,customer,tariff,services,start_date,end_date,auto_renewal,status"]
    for i in range(rows):
        c = i % customers + 1
        ref = (str(c), f"c{c}@example.com", f"+7912{c:07d}")[i % 3]
        end = today + timedelta(days=rnd.randint(40, 730))
        lines.append(f"{40000000 + i},{ref},Home {i % 7},internet;tv,{(end - timedelta(days=365)).isoformat()},"
                     f"{end.isoformat()},{'true' if i % 2 else 'false'},active")
    return "\n".join(lines) + "\n"


async def run(url: str, rows: int, customers: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as s, s.begin():
        step = 5000
        for i in range(0, customers, step):
            await s.execute(insert(Customer), [
                {"name": f"C{c}", "email": f"c{c}@example.com", "phone": f"+7912{c:07d}", "language": "ru",
                 "consent_notices": True, "consent_marketing": False,
                 "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}
                for c in range(i + 1, min(i + step, customers) + 1)])
    now = datetime.now(UTC)
    text = make_csv(rows, customers, now.date())
    settings = CoreSettings()
    print(f"database: {make_url(url).get_backend_name()}; {rows} rows ({len(text) / 1e6:.1f} MB), "
          f"{customers} customers; load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1/5 min), "
          f"{os.cpu_count()} cores")
    print(f"{'run':<26}{'seconds':>9}{'cpu s':>8}{'rows/s':>10}{'contracts':>11}{'reminders':>11}")
    bad = text + "49999999,unknown@example.com,Home,,2026-01-01,2027-01-01,true,active\n"
    for label, body in (("first import", text), ("same file again", text), ("one bad row (refused)", bad)):
        started, cpu = time.perf_counter(), time.process_time()
        async with sessionmaker() as s, s.begin():
            result = await importer.import_csv(s, body, settings=settings, now=now, actor=None)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        async with sessionmaker() as s:
            contracts = await s.scalar(select(func.count()).select_from(Contract))
            reminders = await s.scalar(select(func.count()).select_from(ScheduledTask))
        outcome = f"{result.error_count} errors" if result.error_count else f"{result.imported / took:,.0f}"
        print(f"{label:<26}{took:>9.1f}{cpu:>8.1f}{outcome:>10}{contracts:>11}{reminders:>11}")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a private database is made on it)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    with migrated_database(args.postgres, "sb_bench_contracts") as url:
        asyncio.run(run(url, args.rows, args.customers))


if __name__ == "__main__":
    main()
