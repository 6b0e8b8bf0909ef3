"""declared intent actions, queue hand-over settings, bot-ticket lifecycle

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tickets with the bot, for the sweep that resolves the quiet ones (core/bot_lifecycle).
BOT_SQL = "status = 'bot'"


def upgrade() -> None:
    op.create_table(
        "intent_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intent_actions")),
        sa.UniqueConstraint("intent", name=op.f("uq_intent_actions_intent")),
    )
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bot_answers_while_waiting", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("default_wait_minutes", sa.Integer(), nullable=False, server_default="15"))
        batch_op.create_foreign_key(batch_op.f("fk_teams_calendar_id_calendars"), "calendars", ["calendar_id"],
                                    ["id"], ondelete="SET NULL")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_by_bot", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("waiting_notice_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_tickets_team_first_response", ["team_id", "first_response_at"], unique=False)
    op.create_index("ix_tickets_bot_quiet", "tickets", ["updated_at"], unique=False,
                    postgresql_where=sa.text(BOT_SQL), sqlite_where=sa.text(BOT_SQL))


def downgrade() -> None:
    op.drop_index("ix_tickets_bot_quiet", table_name="tickets", postgresql_where=sa.text(BOT_SQL),
                  sqlite_where=sa.text(BOT_SQL))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_team_first_response")
        batch_op.drop_column("waiting_notice_at")
        batch_op.drop_column("resolved_by_bot")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_teams_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_column("default_wait_minutes")
        batch_op.drop_column("bot_answers_while_waiting")
        batch_op.drop_column("calendar_id")
    op.drop_table("intent_actions")
