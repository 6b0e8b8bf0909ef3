"""A minimal keep-alive HTTP/1.1 client for the benchmarks' load generators.

httpx costs about a millisecond of CPU per request; on a 2-core machine a load generator built on it takes the
CPU the server under test needs. This one does just enough protocol for small JSON requests.
"""

from __future__ import annotations

import asyncio


class Conn:
    """One keep-alive HTTP/1.1 connection; just enough protocol for this benchmark."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def analyze(url: str) -> None:
    """Refresh the planner's statistics, as autovacuum does on a live database within a minute or so.

    A benchmark on a brand-new database would otherwise run entirely on plans made for empty tables (PostgreSQL
    keeps scanning a whole table for a unique-key lookup until its first ANALYZE); that is not the state of a
    contact centre in service, so the benchmarks warm up, analyze, then measure.
    """
    from sqlalchemy import text

    from core.db.session import create_engine

    async def run() -> None:
        engine = create_engine(url)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
        await engine.dispose()

    asyncio.run(run())


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A /proc memory figure (VmRSS now, VmHWM the peak) of a server and its worker processes, summed, in MB."""
    import subprocess
    from pathlib import Path

    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
        pids += [int(p) for p in out.split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total
