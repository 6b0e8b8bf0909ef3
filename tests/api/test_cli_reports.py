"""`switchboard reports rebuild`, run as an operator runs it, on a database that had tickets before the KPI tables."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.api.test_cli import BIN, run


def add_tickets(tmp_path: Path, count: int) -> None:
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        db.execute("INSERT INTO customers (id, name, created_at, updated_at) VALUES "
                   "(1, 'c', '2026-03-01 22:30:00', '2026-03-01 22:30:00')")
        for n in range(1, count + 1):
            db.execute("INSERT INTO tickets (id, customer_id, subject, status, priority, channel, failed_bot_answers, "
                       "created_at, updated_at, resolved_by_bot, reopen_count) VALUES (?, 1, 's', 'open', 'normal', "
                       "'telegram', 0, '2026-03-01 22:30:00', '2026-03-01 22:30:00', 0, 0)", (n,))


def state(tmp_path: Path) -> tuple[int, str]:
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        facts = int(db.execute("SELECT count(*) FROM kpi_ticket_facts").fetchone()[0])
        day = db.execute("SELECT day FROM kpi_ticket_facts LIMIT 1").fetchone()[0]
        zone = json.loads(db.execute("SELECT data FROM kpi_state").fetchone()[0])["time_zone"]
    return facts, f"{zone} {day}"


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_reports_rebuild_with_progress_and_again_after_a_time_zone_change(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    add_tickets(tmp_path, 3)
    r = run(["reports", "rebuild"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "3/3 tickets (100.0%)" in r.stdout and "rebuilt in Europe/Moscow: 3 tickets" in r.stdout
    assert state(tmp_path) == (3, "Europe/Moscow 2026-03-02")  # 22:30 UTC is 01:30 the next day in Moscow
    r = run(["reports", "rebuild"], tmp_path, SWITCHBOARD_CORE__KPI_TIME_ZONE="UTC")
    assert r.returncode == 0, r.stderr
    assert state(tmp_path) == (3, "UTC 2026-03-01")
