"""tickets: ix_tickets_active_id, the active tickets (new, open, pending; not merged) by id

A search narrowed to the active tickets (every console inbox view) walks it newest first and checks each ticket's
stored tsvector, stopping at the candidates it needs (~2,000 entries for 200 subjects holding a common word at
1,000,000 tickets: 8 ms); without it the planner ANDed the word's GIN bitmap (94,000 tickets) with the active ones
and looked up the customer of every match before sorting (50-77 ms).

PostgreSQL: built CONCURRENTLY (a database in use keeps taking writes). SQLite: a plain partial index.

Revision ID: 0036
Revises: 0035
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_tickets_active_id"
ACTIVE = "status IN ('new', 'open', 'pending') AND merged_into_id IS NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(NAME, "tickets", ["id"], unique=False, sqlite_where=sa.text(ACTIVE))
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")  # an INVALID one of a failed build
        op.execute(f"CREATE INDEX CONCURRENTLY {NAME} ON tickets (id) WHERE {ACTIVE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(NAME, table_name="tickets")
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
