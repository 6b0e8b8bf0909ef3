"""identity and personal data: normalised contact keys on customers (linking and the duplicate list), the record of every customer
merge (what it moved, so un-merge restores it), pairs of customers said to be different people, tickets' anonymised_at for the retention policy

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.search.indexes import sqlite_fts_triggers

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "merged_into_id IS NULL AND erased_at IS NULL"
RETENTION = "status = 'closed' AND anonymised_at IS NULL"
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_key", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("phone_key", sa.String(length=32), nullable=True))
    # Existing rows: the same forms as core.customers.models.email_key/phone_key (the Russian trunk 8 aside, which
    # the next save of the row applies).
    op.execute("UPDATE customers SET email_key = lower(trim(email)) WHERE email IS NOT NULL AND trim(email) <> ''")
    if op.get_bind().dialect.name == "postgresql":
        digits = "regexp_replace(phone, '[^0-9]', '', 'g')"
    else:
        digits = "phone"
        for char in (" ", "-", "(", ")", "+", "."):
            digits = f"replace({digits}, '{char}', '')"
    op.execute(f"UPDATE customers SET phone_key = {digits} WHERE phone IS NOT NULL AND length({digits}) >= 6")  # noqa: S608 - constants
    op.create_index("ix_customers_email_key_live", "customers", ["email_key"], postgresql_where=sa.text(LIVE),
                    sqlite_where=sa.text(LIVE))
    op.create_index("ix_customers_phone_key_live", "customers", ["phone_key"], postgresql_where=sa.text(LIVE),
                    sqlite_where=sa.text(LIVE))
    # A plain ADD COLUMN on both databases (a batch copy of `tickets` would drop SQLite's FTS5 triggers).
    op.add_column("tickets", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_retention", "tickets", ["closed_at"], postgresql_where=sa.text(RETENTION),
                    sqlite_where=sa.text(RETENTION))
    op.create_table("customer_merges",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("source_id", sa.Integer(), nullable=False),
    sa.Column("target_id", sa.Integer(), nullable=False),
    sa.Column("actor_user_id", sa.Integer(), nullable=True),
    sa.Column("reason", sa.String(length=32), nullable=False),
    sa.Column("moved", JSON, nullable=False),
    sa.Column("filled", JSON, nullable=False),
    sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("unmerged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("unmerged_by_id", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["source_id"], ["customers.id"], name=op.f("fk_customer_merges_source_id_customers"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["target_id"], ["customers.id"], name=op.f("fk_customer_merges_target_id_customers"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name=op.f("fk_customer_merges_actor_user_id_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["unmerged_by_id"], ["users.id"], name=op.f("fk_customer_merges_unmerged_by_id_users"), ondelete="SET NULL"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merges"))
    )
    op.create_index("ix_customer_merges_pair", "customer_merges", ["source_id", "target_id"])
    op.create_index(op.f("ix_customer_merges_source_id"), "customer_merges", ["source_id"])
    op.create_index(op.f("ix_customer_merges_target_id"), "customer_merges", ["target_id"])
    op.create_table("customer_distinct_pairs",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("low_id", sa.Integer(), nullable=False),
    sa.Column("high_id", sa.Integer(), nullable=False),
    sa.Column("actor_user_id", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["low_id"], ["customers.id"], name=op.f("fk_customer_distinct_pairs_low_id_customers"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["high_id"], ["customers.id"], name=op.f("fk_customer_distinct_pairs_high_id_customers"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name=op.f("fk_customer_distinct_pairs_actor_user_id_users"), ondelete="SET NULL"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_distinct_pairs")),
    sa.UniqueConstraint("low_id", "high_id", name=op.f("uq_customer_distinct_pairs_low_id_high_id"))
    )
    op.create_index(op.f("ix_customer_distinct_pairs_high_id"), "customer_distinct_pairs", ["high_id"])


def downgrade() -> None:
    op.drop_table("customer_distinct_pairs")
    op.drop_table("customer_merges")
    op.drop_index("ix_tickets_retention", table_name="tickets")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("anonymised_at")
    if op.get_bind().dialect.name == "sqlite":  # the batch copy of `tickets` dropped its FTS5 triggers
        for statement in sqlite_fts_triggers("fts_tickets"):
            op.execute(statement)
    op.drop_index("ix_customers_phone_key_live", table_name="customers")
    op.drop_index("ix_customers_email_key_live", table_name="customers")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("phone_key")
        batch_op.drop_column("email_key")
