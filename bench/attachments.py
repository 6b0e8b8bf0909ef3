"""Attachment backends: upload and download throughput and p99 for 100 KB and 10 MB files, in one run.

    .venv/bin/python bench/attachments.py [--small 60] [--large 6] [--postgres URL]

Backends: the local folder (the ratio baseline), PostgreSQL rows (a private database on --postgres or
SWITCHBOARD_TEST_POSTGRES_URL, dropped afterwards) and S3 (moto's server, started as its own process on
127.0.0.1). Each operation goes through the backend interface the app uses: `save` of fresh random bytes, then a
full streamed read. One operation at a time; the table prints MB/s, p50/p99 in ms and the throughput relative to
the local folder. Say the machine's load (`uptime`) next to the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import admin_sql, private_database  # noqa: E402
from core.attachments.backends import AttachmentBackend, LocalBackend, PostgresBackend, S3Backend  # noqa: E402
from core.attachments.settings import AttachmentStorageSettings, S3Settings  # noqa: E402
from core.attachments.store import AttachmentStore  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from tests.support.net import free_port  # noqa: E402

SIZES = {"100 KB": 100 * 1024, "10 MB": 10 * 1024 * 1024}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(backend: AttachmentBackend, size: int, count: int) -> dict[str, Any]:
    ups, downs, keys = [], [], []
    for _ in range(count):
        data = os.urandom(size)
        started = time.perf_counter()
        info = await backend.save("bench.bin", "application/octet-stream", data, namespace="uploads")
        ups.append(time.perf_counter() - started)
        keys.append(info.storage_key)
    for key in keys:
        started = time.perf_counter()
        got = 0
        async for chunk in backend.stream(str(key)):
            got += len(chunk)
        downs.append(time.perf_counter() - started)
        assert got == size
    return {"up": ups, "down": downs, "bytes": size * count}


async def s3_ready(endpoint: str) -> S3Backend:
    settings = AttachmentStorageSettings(backend="s3", s3=S3Settings(
        endpoint_url=endpoint, bucket="bench", access_key_id="bench",
        secret_access_key="bench", timeout_seconds=60))  # type: ignore[arg-type]  # noqa: S106 (moto's)
    deadline = time.monotonic() + 60
    while True:
        backend = await S3Backend.connect(settings)
        try:
            await backend.client.create_bucket(Bucket="bench")
            return backend
        except Exception:
            await backend.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, workdir: Path) -> list[list[str]]:
    backends: list[tuple[str, Any]] = [("local", lambda: _local(workdir))]
    pg = args.postgres or os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
    if pg:
        backends.append(("postgres", lambda: _postgres(pg)))
    backends.append(("s3 (moto)", _s3))
    rows: list[list[str]] = []
    baseline: dict[tuple[str, str], float] = {}
    for name, open_backend in backends:
        backend, cleanup = await open_backend()
        try:
            for label, size in SIZES.items():
                count = args.small if size < 1024 * 1024 else args.large
                result = await measure(backend, size, count)
                for direction in ("up", "down"):
                    times = result[direction]
                    rate = result["bytes"] / sum(times) / 1e6
                    baseline.setdefault((label, direction), rate)
                    rows.append([name, label, "upload" if direction == "up" else "download", str(count),
                                 f"{rate:,.1f}", f"{percentile(times, 0.5) * 1000:,.1f}",
                                 f"{percentile(times, 0.99) * 1000:,.1f}",
                                 f"{rate / baseline[(label, direction)]:.2f}"])
        finally:
            await backend.close()
            await cleanup()
    return rows


async def _local(workdir: Path) -> tuple[AttachmentBackend, Any]:
    async def nothing() -> None:
        return None

    return LocalBackend(AttachmentStore(workdir / "local")), nothing


async def _postgres(server: str) -> tuple[AttachmentBackend, Any]:
    url, name = await asyncio.to_thread(private_database, server)
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url, pool_size=5)

    async def drop() -> None:
        await engine.dispose()
        await asyncio.to_thread(admin_sql, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PostgresBackend(create_sessionmaker(engine)), drop


async def _s3() -> tuple[AttachmentBackend, Any]:
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    backend = await s3_ready(f"http://127.0.0.1:{port}")

    async def stop() -> None:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)

    return backend, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=60, help="100 KB files per backend")
    parser.add_argument("--large", type=int, default=6, help="10 MB files per backend")
    parser.add_argument("--postgres", default=None, help="PostgreSQL server URL (a private database is made)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # admin_sql runs its own event loop: it is called from worker threads here.
        rows = asyncio.run(run(args, Path(tmp)))
    header = ["backend", "file", "op", "n", "MB/s", "p50 ms", "p99 ms", "x local"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
          f"{os.cpu_count()} cores")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).rjust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
