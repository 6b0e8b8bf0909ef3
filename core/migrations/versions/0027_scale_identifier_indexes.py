"""search: btree indexes on lower(e-mail), lower(channel id) and lower(order number) for identifier equality on
PostgreSQL (the trigram indexes answered `=` by reading the trigrams every address shares: ~100 ms a look-up on
the year bench)

Built CONCURRENTLY (a database in use keeps taking writes). SQLite: nothing (its identifier look-ups use the
btrees on the columns as stored).

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from core.search.indexes import PG_EQUALITY_INDEXES

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name, (table, expression, method) in PG_EQUALITY_INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # an INVALID one of a failed build
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING {method} ({expression})")
            op.execute(f"ANALYZE {table}")  # statistics of the expression, which the planner needs to pick it


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name in PG_EQUALITY_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
