"""search: stored tsvector columns (kept by triggers) for message texts, ticket subjects and notes on PostgreSQL,
indexed instead of migration 0022's to_tsvector(...) expressions

Works on a database in use, with data: the columns are added without a default (no table rewrite), the triggers
fill them for every row written from then on, the existing rows are filled in batches of ids, each committed on
its own (progress on stderr; an interrupted upgrade goes on where it stopped) and each table vacuumed (the
backfill left a dead version of every row), then the GIN indexes are built CONCURRENTLY and the expression
indexes dropped CONCURRENTLY. Searches keep using the old indexes until then.
Measured on the year bench (3,100,000 messages): see bench/scale.py and the design record. SQLite: nothing (FTS5).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30
"""

import sys
import time
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from core.search.indexes import (
    PG_EXPRESSION_INDEXES,
    PG_TSV_INDEXES,
    PG_TSV_TEXTS,
    TSV_COLUMN,
    pg_tsv_ddl,
    pg_tsv_drop,
    pg_tsv_expression,
)

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000  # ids per backfill statement: a few seconds of row locks at most, then a commit


def _say(line: str) -> None:
    print(f"[0023 {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        for table in PG_TSV_TEXTS:
            for statement in pg_tsv_ddl(table):
                op.execute(statement)
        for table in PG_TSV_TEXTS:
            low, high = bind.execute(text(
                f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {table}")).one()  # noqa: S608 - constants
            started, done = time.monotonic(), 0
            # Rows the trigger already filled (written since the column exists) are left alone.
            for first in range(int(low), int(high) + 1, BATCH):
                done += bind.execute(text(
                    f"UPDATE {table} SET {TSV_COLUMN} = {pg_tsv_expression(table, table)} "  # noqa: S608 - constants
                    f"WHERE id >= :first AND id < :last AND {TSV_COLUMN} IS NULL"),
                    {"first": first, "last": first + BATCH}).rowcount
                if (first - low) // BATCH % 25 == 24:
                    _say(f"{table}: {first + BATCH - low:,} / {high - low + 1:,} ids, {done:,} rows filled, "
                         f"{time.monotonic() - started:.0f} s")
            _say(f"{table}: {done:,} rows filled in {time.monotonic() - started:.0f} s")
            # Every row was updated: its old version is dead, in the table and in each of its indexes. Left to
            # autovacuum (which had not come by on the year bench), the inbox's index scans wade through them; a
            # vacuum now also gives the planner the new column's statistics.
            started = time.monotonic()
            op.execute(f"VACUUM (ANALYZE) {table}")
            _say(f"{table}: vacuumed in {time.monotonic() - started:.0f} s")
        for name, (table, expression, method) in PG_TSV_INDEXES.items():
            started = time.monotonic()
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # an INVALID one of a failed build
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING {method} ({expression})")
            _say(f"index {name}: {time.monotonic() - started:.0f} s")
        for name in PG_EXPRESSION_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        for table in PG_TSV_TEXTS:  # statistics of the columns as the trigger filled them meanwhile
            op.execute(f"ANALYZE {table} ({TSV_COLUMN})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, (table, expression, method) in PG_EXPRESSION_INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING {method} ({expression})")
        for name in PG_TSV_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        for table in PG_TSV_TEXTS:
            for statement in pg_tsv_drop(table):
                op.execute(statement)
