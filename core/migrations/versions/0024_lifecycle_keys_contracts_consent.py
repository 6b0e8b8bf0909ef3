"""customer lifecycle: integration keys with scopes, contracts, consent log and customer preferences, order
notice templates

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("order_notice_templates",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=64), nullable=False),
    sa.Column("internal", sa.Boolean(), nullable=False),
    sa.Column("text_en", sa.Text(), nullable=True),
    sa.Column("text_ru", sa.Text(), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_order_notice_templates")),
    sa.UniqueConstraint("status", name=op.f("uq_order_notice_templates_status"))
    )
    op.create_table("contracts",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("number", sa.String(length=64), nullable=False),
    sa.Column("customer_id", sa.Integer(), nullable=False),
    sa.Column("tariff", sa.String(length=200), nullable=False),
    sa.Column("services", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
    sa.Column("start_date", sa.Date(), nullable=False),
    sa.Column("end_date", sa.Date(), nullable=False),
    sa.Column("auto_renewal", sa.Boolean(), nullable=False),
    sa.Column("status", sa.Enum("active", "terminating", "terminated", "expired", name="contractstatus", native_enum=False, length=16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_contracts_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
    sa.UniqueConstraint("number", name=op.f("uq_contracts_number"))
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_end_date"), ["end_date"], unique=False)

    op.create_table("api_keys",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("prefix", sa.String(length=16), nullable=False),
    sa.Column("key_hash", sa.String(length=64), nullable=False),
    sa.Column("scopes", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by_id", sa.Integer(), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_api_keys_created_by_id_users"), ondelete="SET NULL"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    sa.UniqueConstraint("name", name=op.f("uq_api_keys_name"))
    )
    op.create_table("consent_log",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("customer_id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.Enum("notices", "marketing", name="consentkind", native_enum=False, length=16), nullable=False),
    sa.Column("granted", sa.Boolean(), nullable=False),
    sa.Column("source", sa.String(length=32), nullable=False),
    sa.Column("actor_user_id", sa.Integer(), nullable=True),
    sa.Column("actor_label", sa.String(length=100), nullable=True),
    sa.Column("note", sa.Text(), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name=op.f("fk_consent_log_actor_user_id_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_consent_log_customer_id_customers"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_log"))
    )
    with op.batch_alter_table("consent_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_log_customer_id"), ["customer_id"], unique=False)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preferred_channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("quiet_from", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("quiet_until", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("consent_notices", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("consent_marketing", sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("consent_marketing")
        batch_op.drop_column("consent_notices")
        batch_op.drop_column("time_zone")
        batch_op.drop_column("quiet_until")
        batch_op.drop_column("quiet_from")
        batch_op.drop_column("preferred_channel")

    with op.batch_alter_table("consent_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_log_customer_id"))

    op.drop_table("consent_log")
    op.drop_table("api_keys")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_end_date"))
        batch_op.drop_index(batch_op.f("ix_contracts_customer_id"))

    op.drop_table("contracts")
    op.drop_table("order_notice_templates")
