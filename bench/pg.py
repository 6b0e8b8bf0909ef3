"""asyncpg helpers the PostgreSQL benchmarks share: the plain DSN of a SQLAlchemy URL, one admin statement."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


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
