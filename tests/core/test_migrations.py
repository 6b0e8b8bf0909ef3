"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go back down."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

import core.models
from core.db.migrate import alembic_config


async def test_models_and_migrations_agree(db_engine: AsyncEngine) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, core.models.Base.metadata))

    async with db_engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


def test_downgrade_to_base_and_up_again(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.sqlite3"
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


def test_0010_moves_the_imap_checkpoints_into_the_channel_cursors_and_back(tmp_path: Any) -> None:
    import json
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path}/m.sqlite3"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0009")
    with sqlite3.connect(tmp_path / "m.sqlite3") as db:
        db.execute("INSERT INTO email_checkpoints (mailbox, uidvalidity, last_uid, updated_at) "
                   "VALUES ('support', 1700000000, 42, '2026-11-01 10:00:00.000000')")
    command.upgrade(cfg, "0010")
    with sqlite3.connect(tmp_path / "m.sqlite3") as db:
        rows = db.execute("SELECT channel, name, value, updated_at FROM channel_cursors").fetchall()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert [(c, n, json.loads(v), u[:19]) for c, n, v, u in rows] == [
        ("email", "support", {"uidvalidity": 1700000000, "last_uid": 42}, "2026-11-01 10:00:00")]
    assert "email_checkpoints" not in tables and "scheduled_tasks" in tables
    command.downgrade(cfg, "0009")
    with sqlite3.connect(tmp_path / "m.sqlite3") as db:
        back = db.execute("SELECT mailbox, uidvalidity, last_uid FROM email_checkpoints").fetchall()
    assert back == [("support", 1700000000, 42)]


def test_the_schema_needs_no_channel() -> None:
    """What the migration environment imports (every table, the engine) loads no `channels` module."""
    import subprocess
    import sys

    from core.db.migrate import MIGRATIONS_DIR

    source = (MIGRATIONS_DIR / "env.py").read_text(encoding="utf-8")
    assert "import channels" not in source and "from channels" not in source
    probe = ("import sys, core.models, core.db.session; "
             "loaded = [m for m in sys.modules if m == 'channels' or m.startswith('channels.')]; "
             "print(loaded, file=sys.stderr); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"channel modules loaded: {result.stderr}"
