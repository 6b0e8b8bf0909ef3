"""`switchboard serve --workers 2`, run as a user runs it: a worker killed with SIGKILL, and one that stops answering
the master's health ping, are replaced; each restart is logged with its reason (the signal, the unanswered ping),
and /health and /metrics of the workers count them."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.waiting import wait_for_sync
from tests.support.workers import BIN, log_events, serve_workers

# Worker processes start, die and restart on a busy machine: long waits, and a refused connection means "not yet".
wait_for = functools.partial(wait_for_sync, timeout=120.0, ignore=(httpx.HTTPError,))


@pytest.fixture
def server(pg_migrated: str | None, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    if pg_migrated is None:
        pytest.skip("several workers need PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL")
    if not BIN.exists():
        pytest.skip("the package is not installed into this venv")
    with serve_workers(pg_migrated, tmp_path, {
        "SWITCHBOARD_SECRET_KEY": "supervisor-test-secret",
        # Short enough for the frozen worker below to be noticed soon, long enough for a start on a busy machine.
        "SWITCHBOARD_WORKER_HEALTHCHECK_SECONDS": "15",
    }) as running:
        yield running


@pytest.mark.slow(seconds=25)  # worker processes start, die and restart
def test_a_killed_worker_is_logged_restarted_and_counted(server: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    process, port, log = server
    base = f"http://127.0.0.1:{port}"

    def health() -> dict[str, Any] | None:
        r = httpx.get(f"{base}/health", timeout=10)
        return r.json() if r.status_code == 200 else None

    def both_workers_serving() -> dict[str, Any] | None:
        h = health()
        started = [e for e in log_events(log) if e.get("msg") == "switchboard started"]
        return h if h and len(started) >= 2 else None

    first = wait_for(both_workers_serving, what="two workers serving")
    processes = first["processes"]
    assert processes["supervised"] is True and processes["workers"] == 2 and processes["restarts"] == 0
    started = [e for e in log_events(log) if e.get("event") == "worker_started"]
    assert sorted(e["slot"] for e in started) == [0, 1]
    victim = processes["pids"][1]
    assert victim in {e["pid"] for e in started}

    os.kill(victim, signal.SIGKILL)

    restarted = wait_for(lambda: [e for e in log_events(log) if e.get("event") == "worker_restarted"],
                         what="the restart logged")
    assert len(restarted) == 1
    assert restarted[0]["old_pid"] == victim and restarted[0]["slot"] == 1
    assert restarted[0]["reason"] == "signal" and restarted[0]["signal"] == "SIGKILL"
    exited = [e for e in log_events(log) if e.get("event") == "worker_exited"]
    assert exited[0]["pid"] == victim and exited[0]["signal"] == "SIGKILL"
    assert exited[0]["level"] == "warning" and exited[0]["logger"] == "switchboard.supervisor"

    # Whichever worker answers, it reports the master's counts.
    for _ in range(6):
        processes = wait_for(lambda: (h := health()) and h["processes"]["restarts"] == 1 and h["processes"],
                             what="the restart counted in /health")
        assert processes["restarts_by_reason"] == {"signal": 1}
        assert processes["last_restart"]["old_pid"] == victim
        assert processes["last_restart"]["signal"] == "SIGKILL"
        assert victim not in processes["pids"]
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'switchboard_worker_restarts_total{reason="signal"} 1.0' in metrics
        assert "switchboard_worker_processes 2.0" in metrics
    assert process.poll() is None

    # A worker that is alive but does not answer (stopped): the master kills it after the ping timeout, and says so.
    frozen = processes["pids"][0]
    os.kill(frozen, signal.SIGSTOP)
    unresponsive = wait_for(lambda: [e for e in log_events(log) if e.get("event") == "worker_unresponsive"],
                            what="the unanswered ping logged")
    assert unresponsive[0]["pid"] == frozen and unresponsive[0]["healthcheck_timeout_seconds"] == 15
    restarted = wait_for(lambda: [e for e in log_events(log) if e.get("event") == "worker_restarted"][1:],
                         what="the second restart logged")
    assert restarted[0]["old_pid"] == frozen and restarted[0]["reason"] == "unresponsive"
    processes = wait_for(lambda: (h := health()) and h["processes"]["restarts"] == 2 and h["processes"],
                         what="the second restart counted")
    assert processes["restarts_by_reason"] == {"signal": 1, "unresponsive": 1}
    assert 'switchboard_worker_restarts_total{reason="unresponsive"} 1.0' in httpx.get(f"{base}/metrics",
                                                                                        timeout=10).text

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert any(e.get("event") == "supervisor_stopped" and e["restarts"] == 2 for e in log_events(log))
