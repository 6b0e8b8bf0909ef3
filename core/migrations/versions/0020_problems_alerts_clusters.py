"""typical problems: rising-problem alerts, handled not-understood messages, the not-understood messages' index

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REASONS = "'low_confidence', 'nlu_unavailable'"
_PG = f"direction = 'inbound' AND (extra ->> 'reason') IN ({_REASONS})"
_SQLITE = f"direction = 'inbound' AND json_extract(extra, '$.reason') IN ({_REASONS})"
_ACTIVE = "resolved_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "problem_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dimension", sa.Enum("intent", "channel", name="dimension", native_enum=False, length=16),
                  nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_count", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("usual", sa.Float(), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("peak_count", sa.Integer(), nullable=False),
        sa.Column("peak_ratio", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_problem_alerts_active", "problem_alerts", ["dimension", "key"], unique=True,
                    postgresql_where=sa.text(_ACTIVE), sqlite_where=sa.text(_ACTIVE))
    op.create_index("ix_problem_alerts_raised", "problem_alerts", ["raised_at"])
    op.create_table(
        "problem_handled_messages",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("example", sa.Boolean(), nullable=False),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["handled_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_messages_not_understood", "messages", ["created_at"],
                    postgresql_where=sa.text(_PG), sqlite_where=sa.text(_SQLITE))


def downgrade() -> None:
    op.drop_index("ix_messages_not_understood", table_name="messages")
    op.drop_table("problem_handled_messages")
    op.drop_index("ix_problem_alerts_raised", table_name="problem_alerts")
    op.drop_index("ux_problem_alerts_active", table_name="problem_alerts")
    op.drop_table("problem_alerts")
