"""SLA policies, each ticket's SLA clock, and the inbox's sort by SLA due time

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ACTIVE = "status IN ('new', 'open', 'pending') AND merged_into_id IS NULL"


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("queue_ids", JSON, nullable=False),
        sa.Column("priorities", JSON, nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("intents", JSON, nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("next_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("warning_share", sa.Float(), nullable=False),
        sa.Column("warning_actions", JSON, nullable=False),
        sa.Column("breach_actions", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], name=op.f("fk_sla_policies_calendar_id_calendars"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policies_name")),
    )
    op.create_index(op.f("ix_sla_policies_calendar_id"), "sla_policies", ["calendar_id"], unique=False)
    op.create_table(
        "ticket_slas",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        *[sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in (
            "first_response_warn_at", "first_response_due_at", "first_response_met_at", "next_response_started_at",
            "next_response_warn_at", "next_response_due_at", "resolution_started_at", "resolution_warn_at",
            "resolution_due_at", "resolution_met_at", "paused_at", "armed_at")],
        sa.Column("paused_seconds", sa.Float(), nullable=False),
        sa.Column("next_response_paused_seconds", sa.Float(), nullable=False),
        sa.Column("resolution_paused_seconds", sa.Float(), nullable=False),
        sa.Column("notified", JSON, nullable=False),
        sa.Column("reminded", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["policy_id"], ["sla_policies.id"], name=op.f("fk_ticket_slas_policy_id_sla_policies"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_slas_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_slas")),
    )
    op.create_index(op.f("ix_ticket_slas_policy_id"), "ticket_slas", ["policy_id"], unique=False)
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_active_sla_due", "tickets", ["sla_due_at", "id"], unique=False,
                    postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index("ix_tickets_active_sla_due", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("sla_due_at")
    op.drop_index(op.f("ix_ticket_slas_policy_id"), table_name="ticket_slas")
    op.drop_table("ticket_slas")
    op.drop_index(op.f("ix_sla_policies_calendar_id"), table_name="sla_policies")
    op.drop_table("sla_policies")
