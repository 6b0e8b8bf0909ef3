"""ix_tickets_team_first_response holds only answered tickets (partial: first_response_at IS NOT NULL)

Its one reader (the hand-over's latest first responses of a queue) asks only for answered tickets; every ticket the
bot handles (most of them) paid an index entry on insert for nothing.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANSWERED_SQL = "first_response_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_tickets_team_first_response", table_name="tickets")
    op.create_index("ix_tickets_team_first_response", "tickets", ["team_id", "first_response_at"], unique=False,
                    postgresql_where=sa.text(ANSWERED_SQL), sqlite_where=sa.text(ANSWERED_SQL))


def downgrade() -> None:
    op.drop_index("ix_tickets_team_first_response", table_name="tickets", postgresql_where=sa.text(ANSWERED_SQL),
                  sqlite_where=sa.text(ANSWERED_SQL))
    op.create_index("ix_tickets_team_first_response", "tickets", ["team_id", "first_response_at"], unique=False)
