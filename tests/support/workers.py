"""`switchboard serve --workers N` as a real subprocess on a free port, with its JSON log in a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.net import free_port

BIN = Path(sys.executable).parent / "switchboard"


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a server log (other lines - tracebacks, uvicorn's plain ones - skipped)."""
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            events.append(entry)
    return events


@contextmanager
def serve_workers(database_url: str, tmp_path: Path, env: dict[str, str],
                  workers: int = 2) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """The server with `workers` worker processes on `database_url`: (process, port, log path); stopped with
    SIGTERM afterwards (killed if it does not stop in a minute). `env` adds to or overrides the defaults."""
    port = free_port()
    log = tmp_path / "serve.log"
    full_env = os.environ | {
        "SWITCHBOARD_DATABASE_URL": database_url, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
        "SWITCHBOARD_NLU__ENGINE": "keyword", "SWITCHBOARD_SEED_NLU_DATA": "false",
        "SWITCHBOARD_LOG_JSON": "true", "SWITCHBOARD_LOG_LEVEL": "INFO",
    } | env
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN), "serve", "--workers", str(workers), "--port", str(port)],
                                   env=full_env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, port, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
