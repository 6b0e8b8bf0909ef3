"""full-text search: GIN tsvector and pg_trgm indexes on PostgreSQL, FTS5 tables with triggers on SQLite; the
tickets' sort-order indexes for keyset pages

PostgreSQL builds the indexes with CREATE INDEX CONCURRENTLY outside the migration's transaction: on a year of
data (3,000,000 messages) the GIN build takes minutes, and a plain CREATE INDEX would block every insert
(ingest) for all of them. A build that fails leaves an INVALID index: the upgrade drops it first and starts again.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.search.indexes import PG_EXPRESSION_INDEXES, PG_TRGM_INDEXES, SQLITE_FTS, sqlite_fts_ddl

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The inbox's and the API list's sort orders, each with the id breaking ties, over unmerged tickets.
ORDER_INDEXES = {"ix_tickets_waiting_order": "last_customer_message_at", "ix_tickets_updated_order": "updated_at",
                 "ix_tickets_due_order": "sla_due_at"}
UNMERGED = sa.text("merged_into_id IS NULL")
ACTIVE = sa.text("status IN ('new', 'open', 'pending') AND merged_into_id IS NULL")


# As this revision made them (0023 replaces the three text expression indexes by indexes on stored columns).
PG_INDEXES = {**PG_EXPRESSION_INDEXES, **PG_TRGM_INDEXES}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        with op.get_context().autocommit_block():
            for name, (table, expression, method) in PG_INDEXES.items():
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING {method} ({expression})")
            for name, column in ORDER_INDEXES.items():
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                op.create_index(name, "tickets", [column, "id"], postgresql_where=UNMERGED,
                                postgresql_concurrently=True)
            op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_tickets_active_waiting")
            op.create_index("ix_tickets_active_waiting", "tickets", ["last_customer_message_at", "id"],
                            postgresql_where=ACTIVE, postgresql_concurrently=True)
        return
    for fts in SQLITE_FTS:
        for statement in sqlite_fts_ddl(fts):
            op.execute(statement)
    for name, column in ORDER_INDEXES.items():
        op.create_index(name, "tickets", [column, "id"], sqlite_where=UNMERGED)
    op.create_index("ix_tickets_active_waiting", "tickets", ["last_customer_message_at", "id"], sqlite_where=ACTIVE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name in [*PG_INDEXES, *ORDER_INDEXES, "ix_tickets_active_waiting"]:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        # pg_trgm stays: other databases' objects (or an operator's) may use it, and it costs nothing idle.
        return
    for fts in SQLITE_FTS:
        for suffix in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {fts}")
    for name in [*ORDER_INDEXES, "ix_tickets_active_waiting"]:
        op.drop_index(name, table_name="tickets")
