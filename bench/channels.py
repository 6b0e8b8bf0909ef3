"""All channel benchmarks in one run: email backfill from Dovecot, then Telegram, VK, WhatsApp, web chat and sockets.

    .venv/bin/python bench/channels.py [--postgres URL] [--workers N] [--quick]

Runs bench/channels_email.py (SQLite, and PostgreSQL when a URL is given) and bench/channels_chat.py (on
SQLite with one worker; with --postgres also on a fresh PostgreSQL database with --workers processes) one
after the other, each in its own process so they never share a CPU, and prints their tables in order.
--quick uses smaller counts (a smoke run; not for the closing numbers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import admin_sql  # noqa: E402 - after the path is set


def run(script: str, *args: str) -> None:
    print(f"\n## {script} {' '.join(args)}".rstrip(), flush=True)
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, check=False,
                            stdout=subprocess.PIPE, text=True)
    print(result.stdout.strip(), flush=True)
    if result.returncode != 0:
        raise SystemExit(f"{script} failed with exit code {result.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL"),
                        help="PostgreSQL server URL; the chat run uses a private database on it")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for the PostgreSQL chat run")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args()
    email = ["--messages", "200" if args.quick else "1000"]
    chat = (["--updates", "600", "--sockets", "200", "--messages", "200", "--max-sockets", "1000"] if args.quick
            else ["--updates", "6000"])
    run("channels_email.py", *email, *(["--postgres", args.postgres] if args.postgres else []))
    run("channels_chat.py", *chat)
    if args.postgres:
        from sqlalchemy.engine import make_url

        name = f"sb_bench_chat_{uuid.uuid4().hex[:8]}"
        admin_sql(args.postgres, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            run("channels_chat.py", *chat, "--workers", str(args.workers), "--database-url", url)
        finally:
            admin_sql(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
