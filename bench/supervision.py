"""Worker restarts under load: `serve --workers 2` on PostgreSQL, REST traffic, one worker killed with SIGKILL.

    .venv/bin/python bench/supervision.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

Runs three servers in turn on a private database (created and dropped here), each under the same load (SENDERS
keep-alive connections posting REST messages for --seconds), killing one worker after 10 s, and prints what the
supervisor did: restarts by reason, how many requests were answered, and how long the replacement took to serve.
- "before": the command line as it was (the `switchboard` script imported scikit-learn through nlu.cli, so each
  spawned worker spent seconds importing before uvicorn's ping thread started), with uvicorn's 5 s ping timeout;
- "light import, 5 s": the fix alone, at uvicorn's timeout (shows the cause);
- "light import, 30 s": as shipped (the timeout is a setting, default 30 s).
Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Conn  # noqa: E402
from tests.support.net import free_port  # noqa: E402

SENDERS = 64
OLD_ENTRY = """import sys
import nlu.cli  # noqa: F401  what api.cli imported at module level before the fix
from api.cli import main
if __name__ == "__main__":
    sys.exit(main())
"""


async def load(port: int, seconds: float, counts: Counter[str]) -> None:
    end = time.monotonic() + seconds
    sequence = iter(range(10**9))

    async def sender(i: int) -> None:
        conn: Conn | None = None
        while time.monotonic() < end:
            try:
                if conn is None:
                    conn = await Conn.open(port)
                n = next(sequence)
                body = json.dumps({"external_message_id": f"sv-{uuid.uuid4().hex}", "sender": {
                    "external_id": f"s{n % 500}"}, "text": "where is my order ORD-100200?"}).encode()
                status = await asyncio.wait_for(conn.post("/channels/rest/messages", body, {
                    "X-Api-Key": "bench-key", "Content-Type": "application/json"}), 30)
                counts["ok" if status < 300 else str(status)] += 1
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                counts["failed"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                await asyncio.sleep(0.1)
        if conn is not None:
            conn.close()

    await asyncio.gather(*(sender(i) for i in range(SENDERS)))


def events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def run_variant(name: str, entry: list[str], timeout: int, url: str, data_dir: Path, seconds: float,
                work: Path) -> dict[str, Any]:
    port = free_port()
    log = work / f"serve-{name.replace(' ', '_').replace(',', '')}.log"
    env = os.environ | {"SWITCHBOARD_DATABASE_URL": url, "SWITCHBOARD_DATA_DIR": str(data_dir),
                        "SWITCHBOARD_CHANNELS__REST__API_KEY": "bench-key", "SWITCHBOARD_LOG_JSON": "true",
                        "SWITCHBOARD_SECRET_KEY": "bench-supervision-secret",
                        "SWITCHBOARD_LOG_LEVEL": "INFO", "SWITCHBOARD_WORKER_HEALTHCHECK_SECONDS": str(timeout)}
    with log.open("wb") as out:
        server = subprocess.Popen([*entry, "serve", "--workers", "2", "--port", str(port)], env=env, cwd=work,
                                  stdout=out, stderr=subprocess.STDOUT)
    result: dict[str, Any] = {"variant": name, "timeout": timeout}
    try:
        deadline = time.monotonic() + 300
        pids: list[int] = []
        while time.monotonic() < deadline:
            try:
                h = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                started = sum(1 for e in events(log) if e.get("msg") == "switchboard started")
                if h["processes"].get("pids") and started >= 2:
                    pids = h["processes"]["pids"]
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        if not pids:
            result["note"] = "never served"
            return result
        counts: Counter[str] = Counter()

        async def scenario() -> None:
            traffic = asyncio.create_task(load(port, seconds, counts))
            await asyncio.sleep(10)
            os.kill(pids[1], signal.SIGKILL)
            await traffic

        asyncio.run(scenario())
        time.sleep(2)
        restarts = [e for e in events(log) if e.get("event") == "worker_restarted"]
        result.update(restarts=len(restarts), by_reason=dict(Counter(e["reason"] for e in restarts)),
                      ok=counts["ok"], failed=sum(v for k, v in counts.items() if k != "ok"))
        # How long the replacements took: from the spawn to their "startup complete" (or never).
        lines = events(log)
        last = restarts[-1] if restarts else None
        if last is not None:
            spawned = datetime.fromisoformat(last["ts"])
            complete = [at for e in lines if e.get("msg") == "Application startup complete."
                        and (at := datetime.fromisoformat(e["ts"])) > spawned]
            result["last_replacement_serving_after_s"] = (
                round((complete[0] - spawned).total_seconds(), 1) if complete else None)
        return result
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", required=True, help="a server URL; a private database is made on it")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from core.db.migrate import upgrade
    from core.db.session import create_engine

    name = f"sb_bench_sup_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        engine = create_engine(args.postgres)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory(prefix="sb-bench-sup-") as tmp:
            work = Path(tmp)
            old_entry = work / "switchboard_before.py"
            old_entry.write_text(OLD_ENTRY)
            current = [str(Path(sys.executable).parent / "switchboard")]
            variants = [("before", [sys.executable, str(old_entry)], 5), ("light import, 5 s", current, 5),
                        ("light import, 30 s", current, 30)]
            rows = [run_variant(v, entry, timeout, url, work / "data", args.seconds, work)
                    for v, entry, timeout in variants]
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"\n{SENDERS} REST senders for {args.seconds:.0f} s, one worker killed (SIGKILL) after 10 s; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'variant':<20} {'ping timeout':>12} {'restarts':>8} {'by reason':<32} {'answered':>9} {'failed':>7} "
          f"{'replacement serving after':>26}")
    for r in rows:
        serving = r.get("last_replacement_serving_after_s")
        print(f"{r['variant']:<20} {r['timeout']:>10} s {r.get('restarts', '-')!s:>8} "
              f"{json.dumps(r.get('by_reason', {})):<32} {r.get('ok', '-')!s:>9} {r.get('failed', '-')!s:>7} "
              f"{(f'{serving} s' if serving is not None else 'never'):>26} {r.get('note', '')}")


if __name__ == "__main__":
    main()
