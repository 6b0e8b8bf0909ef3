"""automatic assignment: queue modes, agent languages and presence, the waiting-tickets index

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WAITING_SQL = "assignee_id IS NULL AND merged_into_id IS NULL AND status = 'open'"


def upgrade() -> None:
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "assignment_mode",
            sa.Enum("manual", "round_robin", "least_loaded", name="assignmentmode", native_enum=False, length=16),
            nullable=False, server_default="manual"))
        batch_op.add_column(sa.Column("return_after_minutes", sa.Integer(), nullable=False, server_default="15"))
        batch_op.add_column(sa.Column("last_assigned_user_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("languages", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("away", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_waiting", "tickets", ["team_id", "created_at"], unique=False,
                    postgresql_where=sa.text(WAITING_SQL), sqlite_where=sa.text(WAITING_SQL))


def downgrade() -> None:
    op.drop_index("ix_tickets_waiting", table_name="tickets", postgresql_where=sa.text(WAITING_SQL),
                  sqlite_where=sa.text(WAITING_SQL))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("assigned_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_assigned_at")
        batch_op.drop_column("away")
        batch_op.drop_column("languages")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_column("last_assigned_user_id")
        batch_op.drop_column("return_after_minutes")
        batch_op.drop_column("assignment_mode")
