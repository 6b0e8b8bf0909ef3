"""Helpers the database benchmarks share: the plain DSN of a SQLAlchemy URL, one admin statement, a migrated
database of its own for a run."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Iterator

import asyncpg
from sqlalchemy.engine import make_url

from core.db.migrate import upgrade


def raw_dsn(url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy URL (postgresql+asyncpg://... -> postgresql://...)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin(url: str, sql: str) -> None:
    """One statement on its own connection, outside a transaction (CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(raw_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def migrated_database(postgres: str | None, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """The URL of a new, migrated database for one benchmark run, dropped afterwards: a private database named
    `<prefix>_<random>` on the given PostgreSQL server, or an SQLite file in a temporary folder when there is none.
    `keep` leaves the PostgreSQL database for later runs (a slow fill measured again)."""
    if postgres:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        url = make_url(postgres).set(database=name).render_as_string(hide_password=False)
        asyncio.run(admin(postgres, f'CREATE DATABASE "{name}"'))
        try:
            upgrade(url)
            yield url
        finally:
            if not keep:
                asyncio.run(admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        yield url
