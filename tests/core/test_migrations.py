"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go back down."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

import core.models
from core.db.migrate import alembic_config
from core.db.session import create_engine
from core.search.indexes import include_name
from tests.conftest import BACKENDS, PG_URL


async def test_models_and_migrations_agree(db_engine: AsyncEngine) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_name": include_name})
        return list(compare_metadata(context, core.models.Base.metadata))

    async with db_engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


# -- every migration goes down and up again to the same schema, on both databases ------------------------------


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database no migration has touched: a new SQLite file, or a private PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/m.sqlite3"
        return
    if not PG_URL:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    name = f"sb_migrate_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(sql: str) -> None:
    engine = create_engine(str(PG_URL))
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


def schema_of(url: str) -> dict[str, Any]:
    """Every table with its columns, primary key, indexes, unique and foreign keys, as the database reports them.

    Names the database makes up on its own (SQLite's unnamed constraints) are left out; alembic's own table too.
    """

    def reflect(sync_conn: Any) -> dict[str, Any]:
        inspector = inspect(sync_conn)
        tables: dict[str, Any] = {}
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            columns = {c["name"]: (str(c["type"]), c["nullable"], _default(c.get("default")))
                       for c in inspector.get_columns(table)}
            pk = inspector.get_pk_constraint(table)
            indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                             for i in inspector.get_indexes(table))
            uniques = sorted((u.get("name"), tuple(u["column_names"])) for u in inspector.get_unique_constraints(table))
            foreign = sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                              (f.get("options") or {}).get("ondelete"))
                             for f in inspector.get_foreign_keys(table))
            tables[table] = {"columns": columns, "primary key": tuple(pk["constrained_columns"]),
                             "indexes": indexes, "unique": uniques, "foreign keys": foreign}
        return tables

    async def run() -> dict[str, Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(reflect)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _default(value: Any) -> Any:
    # PostgreSQL spells a default with a cast ('queued'::character varying): the value is what matters.
    return None if value is None else re.sub(r"::[\w ]+$", "", str(value)).strip("()")


def revisions_in_order() -> list[str]:
    """Every revision from the first to the head (one line: no branches)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


def test_each_downgrade_undoes_its_upgrade_and_the_head_comes_back_the_same(empty_db_url: str) -> None:
    """Up one revision at a time (the schema noted after each), then down one at a time: after undoing a revision
    the schema is the one noted before it, down to an empty database; up to the head again equals the first time."""
    cfg = alembic_config(empty_db_url)
    revisions = revisions_in_order()
    schemas = {"base": schema_of(empty_db_url)}
    assert schemas["base"] == {}
    for revision in revisions:
        command.upgrade(cfg, revision)
        schemas[revision] = schema_of(empty_db_url)
    head = schemas[revisions[-1]]
    assert "tickets" in head and "outbox" in head

    for revision, before in reversed(list(zip(revisions, ["base", *revisions[:-1]], strict=True))):
        command.downgrade(cfg, before)
        assert schema_of(empty_db_url) == schemas[before], f"downgrade of {revision} does not undo its upgrade"

    command.upgrade(cfg, "head")
    assert schema_of(empty_db_url) == head


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


def test_0031_keeps_existing_answers_as_first_variants_and_back(empty_db_url: str) -> None:
    """Rasa response variants: the one answer per language an existing database holds becomes variant 0; a second
    variant can then be stored; going down keeps the first."""
    cfg = alembic_config(empty_db_url)
    command.upgrade(cfg, "0030")

    async def run(*sql: str) -> list[Any]:
        engine = create_engine(empty_db_url)
        try:
            async with engine.begin() as conn:
                result = None
                for statement in sql:
                    result = await conn.execute(text(statement))
                return list(result.all()) if result is not None and result.returns_rows else []
        finally:
            await engine.dispose()

    asyncio.run(run("INSERT INTO nlu_intents (id, name, description, created_at) "
                    "VALUES (1, 'greet', '', '2026-11-01 10:00:00')",
                    "INSERT INTO nlu_responses (intent_id, language, text) VALUES (1, 'en', 'Hi')"))
    command.upgrade(cfg, "0031")
    assert asyncio.run(run("SELECT language, position, text FROM nlu_responses")) == [("en", 0, "Hi")]
    asyncio.run(run("INSERT INTO nlu_responses (intent_id, language, position, text) VALUES (1, 'en', 1, 'Hello')"))
    command.downgrade(cfg, "0030")
    assert asyncio.run(run("SELECT language, text FROM nlu_responses")) == [("en", "Hi")]


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
