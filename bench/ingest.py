"""Ingest throughput and latency through the whole pipeline (HTTP submit -> committed ticket + queued reply).

The server runs in its own process (uvicorn, the real app with the embedded NLU engine); the load generator
is a minimal keep-alive HTTP/1.1 client in this process. For each backend (SQLite always, PostgreSQL when a
URL is given) it measures messages/s and p50/p99 latency at 1, 8 and 64 concurrent senders, p99 at a fixed
200 messages/s, the raw database insert rate (the ceiling, same run), and the server's peak memory.
With --fts-cost, each backend is measured twice in the same run: as migrated, and without what search adds to every
write (core/search/indexes.py: SQLite's FTS5 triggers; PostgreSQL's tsvector triggers, GIN and trigram indexes).
The measured phases follow a warm-up and an ANALYZE (bench.load.analyze: what autovacuum does on a live system).

    .venv/bin/python bench/ingest.py [--postgres URL] [--seconds 5] [--workers 1] [--fts-cost]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Conn, analyze, memory_mb  # noqa: E402 - after the path is set
from tests.support.net import free_port  # noqa: E402

API_KEY = "bench-key"
HEADERS = {"Content-Type": "application/json", "X-Api-Key": API_KEY}
TEXTS = [
    "Здравствуйте, у меня не работает интернет с утра",
    "How can I pay my bill?",
    "Где мой заказ ORD-100200?",
    "I want to change my tariff",
    "Хочу расторгнуть договор",
    "my tv shows no signal",
]


def body(i: int, run: str) -> bytes:
    sender = f"{run}-s{i % 500}"
    return json.dumps({"external_message_id": f"{run}-{i}", "sender": {"external_id": sender, "name": "Bench"},
                       "text": TEXTS[i % len(TEXTS)], "thread_id": f"{sender}-{i}"}).encode()


async def closed_loop(port: int, senders: int, seconds: float, run: str) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def sender() -> None:
        nonlocal errors
        conn = await Conn.open(port)
        try:
            while time.perf_counter() < deadline:
                b = body(next(counter), run)
                t0 = time.perf_counter()
                status = await conn.post("/channels/rest/messages", b, HEADERS)
                latencies.append(time.perf_counter() - t0)
                if status != 201:
                    errors += 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    elapsed = time.perf_counter() - start
    return summarize(latencies, elapsed, errors)


async def open_loop(port: int, rate: float, seconds: float, run: str) -> dict[str, float]:
    """Fixed arrival rate: latency as a customer sees it at a steady load."""
    latencies: list[float] = []
    errors = 0
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await Conn.open(port))
    n = int(rate * seconds)

    async def one(i: int) -> None:
        nonlocal errors
        conn = await pool.get()
        t0 = time.perf_counter()
        status = await conn.post("/channels/rest/messages", body(i, run), HEADERS)
        latencies.append(time.perf_counter() - t0)
        pool.put_nowait(conn)
        if status != 201:
            errors += 1

    start = time.perf_counter()
    tasks = []
    for i in range(n):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return summarize(latencies, elapsed, errors)


def summarize(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    lat = sorted(latencies)
    return {
        "n": len(lat), "rate": len(lat) / elapsed, "errors": errors,
        "p50": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan"),
    }


async def raw_insert_rate(url: str, seconds: float, concurrency: int = 64) -> float:
    """The ceiling: single-row insert transactions into a scratch table, same driver and pool settings."""
    from sqlalchemy import text

    from core.db.session import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS bench_raw"))
        await conn.execute(text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, k VARCHAR(64) UNIQUE, v TEXT)"))
    count = 0
    deadline = time.perf_counter() + seconds
    ids = iter(range(1, 10**9))

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            i = next(ids)
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO bench_raw (id, k, v) VALUES (:i, :k, :v)"),
                                   {"i": i, "k": f"k{i}", "v": "x" * 100})
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = count / (time.perf_counter() - start)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE bench_raw"))
    await engine.dispose()
    return rate


def start_server(url: str, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = os.environ | {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_DATA_DIR": str(workdir),
        "SWITCHBOARD_CHANNELS__REST__API_KEY": API_KEY,
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "SWITCHBOARD_MAX_BODY_BYTES": "1048576",
    }
    cmd = [sys.executable, "-m", "uvicorn", "api.app:app_factory", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--no-access-log", "--log-level", "warning", "--workers", str(workers)]
    # The server's log goes to a file: a pipe nobody reads would block the server once it filled up.
    log = (workdir / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    deadline = time.time() + 300  # the embedded NLU engine loads first: minutes on a busy shared machine
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if b"200" in s.recv(100):
                    return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start: " + (workdir / f"server-{port}.log").read_text()[-2000:])


def private_database(server_url: str) -> tuple[str, str]:
    """A fresh database on the given PostgreSQL server (dropped afterwards): (its URL, its name)."""
    from sqlalchemy.engine import make_url

    name = f"sb_bench_{uuid.uuid4().hex[:8]}"
    admin_sql(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False), name


async def admin_sql_async(server_url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE, ANALYZE) on the given server."""
    from sqlalchemy import text

    from core.db.session import create_engine

    engine = create_engine(server_url)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


def admin_sql(server_url: str, sql: str) -> None:
    asyncio.run(admin_sql_async(server_url, sql))


def prepare(url: str, *, without_fts: bool = False) -> None:
    from core.db.migrate import upgrade

    upgrade(url)
    if without_fts:
        asyncio.run(drop_fts_triggers(url))


async def drop_fts_triggers(url: str) -> None:
    """The database without what search adds to every write. SQLite: the FTS5 triggers (the FTS5 tables stay,
    empty, nothing writes to them). PostgreSQL: the triggers filling the stored tsvectors and the GIN indexes
    over them (the columns stay, NULL), and the trigram indexes on customers, identities and orders."""
    from sqlalchemy import text

    from core.db.session import create_engine
    from core.search.indexes import PG_TRGM_INDEXES, PG_TSV_INDEXES, PG_TSV_TEXTS, SQLITE_FTS, TSV_COLUMN

    engine = create_engine(url)
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in PG_TSV_TEXTS:
                await conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_{TSV_COLUMN} ON {table}"))
            for index in (*PG_TSV_INDEXES, *PG_TRGM_INDEXES):
                await conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
        else:
            for fts in SQLITE_FTS:
                for event in ("insert", "delete", "update"):
                    await conn.execute(text(f"DROP TRIGGER IF EXISTS {fts}_{event}"))
    await engine.dispose()


def run_backend(name: str, url: str, seconds: float, workers: int, workdir: Path, *, without_fts: bool = False
                ) -> list[list[str]]:
    prepare(url, without_fts=without_fts)
    ceiling = asyncio.run(raw_insert_rate(url, seconds))
    rows = [[name, "raw insert (ceiling)", "64", f"{ceiling:,.0f}", "-", "-", "-", "-"]]
    proc, port = start_server(url, workdir, workers)
    try:
        run = uuid.uuid4().hex[:8]
        # Warm-up (customers and tickets exist, code paths are hot), then fresh planner statistics: see analyze().
        asyncio.run(closed_loop(port, 64, min(seconds, 3.0), f"{run}-warm"))
        analyze(url)
        for senders in (1, 8, 64):
            r = asyncio.run(closed_loop(port, senders, seconds, f"{run}-{senders}"))
            rows.append([name, "pipeline", str(senders), f"{r['rate']:,.0f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}",
                         f"{r['rate'] / ceiling:.2f}", str(int(r["errors"]))])
        r = asyncio.run(open_loop(port, 200, seconds, f"{run}-fixed"))
        rows.append([name, "pipeline @200/s", "open", f"{r['rate']:,.0f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}",
                     f"{r['rate'] / ceiling:.2f}", str(int(r["errors"]))])
        rows.append([name, "server peak RSS", "-", f"{memory_mb(proc.pid, 'VmHWM'):,.0f} MB", "-", "-", "-", "-"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    # Batches that failed and were ingested one by one (concurrent writers colliding): cost, not errors.
    split = (workdir / f"server-{port}.log").read_text(errors="replace").count("ingest batch failed")
    rows.append([name, "split batches", "-", str(split), "-", "-", "-", "-"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL"),
                        help="PostgreSQL server URL (postgresql+asyncpg://...); the run uses a private database on it")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (PostgreSQL)")
    parser.add_argument("--fts-cost", action="store_true",
                        help="each backend twice: as migrated, and without what search adds to every write (SQLite's "
                             "FTS5 triggers; PostgreSQL's tsvector triggers, GIN and trigram indexes)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    rows: list[list[str]] = []
    try:
        rows += run_backend("sqlite", f"sqlite+aiosqlite:///{workdir}/bench.sqlite3", args.seconds, 1, workdir)
        if args.fts_cost:
            rows += run_backend("sqlite, no FTS5 triggers", f"sqlite+aiosqlite:///{workdir}/bench-nofts.sqlite3",
                                args.seconds, 1, workdir, without_fts=True)
        if args.postgres:
            for without in (False, True) if args.fts_cost else (False,):
                url, name = private_database(args.postgres)
                try:
                    rows += run_backend("postgres, no search triggers/indexes" if without else "postgres", url,
                                        args.seconds, args.workers, workdir, without_fts=without)
                finally:
                    admin_sql(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    header = ["backend", "measure", "senders", "msg/s", "p50 ms", "p99 ms", "x ceiling", "errors"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
