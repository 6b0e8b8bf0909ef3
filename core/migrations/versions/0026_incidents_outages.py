"""incidents: outages and mass problems with their affected customers and linked appeals; contract regions

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGION = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region", REGION, nullable=True))
        batch_op.create_index(batch_op.f("ix_contracts_region"), ["region"], unique=False)
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("message_ru", sa.Text(), nullable=False),
        sa.Column("intents", JSON, nullable=False),
        sa.Column("area", REGION, nullable=True),
        sa.Column("status", sa.Enum("open", "resolved", name="incidentstatus", native_enum=False, length=16),
                  nullable=False),
        sa.Column("notify_affected", sa.Boolean(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("opened_by_id", sa.Integer(), nullable=True),
        sa.Column("opened_via", sa.String(100), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution_en", sa.Text(), nullable=True),
        sa.Column("resolution_ru", sa.Text(), nullable=True),
        sa.Column("affected_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["problem_alerts.id"], name=op.f("fk_incidents_alert_id_problem_alerts"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["opened_by_id"], ["users.id"], name=op.f("fk_incidents_opened_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"], name=op.f("fk_incidents_resolved_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index("ix_incidents_open", "incidents", ["id"], postgresql_where=sa.text("status = 'open'"),
                    sqlite_where=sa.text("status = 'open'"))
    op.create_table(
        "incident_customers",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Enum("listed", "area", name="incidentsource", native_enum=False, length=16),
                  nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_customers_incident_id_incidents"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_incident_customers_customer_id_customers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("incident_id", "customer_id", name=op.f("pk_incident_customers")),
    )
    op.create_index(op.f("ix_incident_customers_customer_id"), "incident_customers", ["customer_id"])
    op.create_table(
        "incident_tickets",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_tickets_incident_id_incidents"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_incident_tickets_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("incident_id", "ticket_id", name=op.f("pk_incident_tickets")),
    )
    op.create_index(op.f("ix_incident_tickets_ticket_id"), "incident_tickets", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_tickets_ticket_id"), table_name="incident_tickets")
    op.drop_table("incident_tickets")
    op.drop_index(op.f("ix_incident_customers_customer_id"), table_name="incident_customers")
    op.drop_table("incident_customers")
    op.drop_index("ix_incidents_open", table_name="incidents")
    op.drop_table("incidents")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_region"))
        batch_op.drop_column("region")
