"""KPI reports: tickets count their reopenings; per-ticket facts, rollups, hourly volumes and the fold's state

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30

An empty database needs no rebuild: the fold job starts from nothing. A database with tickets is folded in by the
job from its cursors starting at zero (or at once by `switchboard reports rebuild`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_COUNTERS = (
    "tickets", "resolved", "ever_resolved", "fcr", "contained", "handoff", "complaint", "reopened",
    "sla_fr_met", "sla_fr_breached", "sla_res_met", "sla_res_breached",
    "csat_sent", "csat_responses", "csat_sum", "csat_1", "csat_2", "csat_3", "csat_4", "csat_5", "csat_low",
    "resolved_out",
)


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "kpi_ticket_facts",
        sa.Column("ticket_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_day", sa.Date(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("intent", sa.String(length=100), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("fcr", sa.Boolean(), nullable=False),
        sa.Column("contained", sa.Boolean(), nullable=False),
        sa.Column("handoff", sa.Boolean(), nullable=False),
        sa.Column("complaint", sa.Boolean(), nullable=False),
        sa.Column("frt_s", sa.Integer(), nullable=True),
        sa.Column("res_s", sa.Integer(), nullable=True),
        sa.Column("sla_fr", sa.Boolean(), nullable=True),
        sa.Column("sla_res", sa.Boolean(), nullable=True),
        sa.Column("csat_sent", sa.Boolean(), nullable=False),
        sa.Column("csat_score", sa.Integer(), nullable=True),
        sa.Column("csat_low", sa.Boolean(), nullable=False),
        sa.Column("escalations", JSON, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_kpi_ticket_facts")),
    )
    op.create_index("ix_kpi_ticket_facts_day", "kpi_ticket_facts", ["day", "ticket_id"], unique=False)
    op.create_table(
        "kpi_rollups",
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTERS),
        sa.Column("frt", sa.LargeBinary(), nullable=False),
        sa.Column("res", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "grain", "period", "key", name=op.f("pk_kpi_rollups")),
    )
    op.create_table(
        "kpi_hourly",
        sa.Column("dimension", sa.String(length=24), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "hour", "key", name=op.f("pk_kpi_hourly")),
    )
    op.create_table(
        "kpi_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_kpi_state")),
    )


def downgrade() -> None:
    op.drop_table("kpi_state")
    op.drop_table("kpi_hourly")
    op.drop_table("kpi_rollups")
    op.drop_index("ix_kpi_ticket_facts_day", table_name="kpi_ticket_facts")
    op.drop_table("kpi_ticket_facts")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("reopen_count")
