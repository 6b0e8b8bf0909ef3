"""wa: provider_templates (WhatsApp's approved message templates, cached) and outbox_parts (delivery per part)

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("param_count", sa.Integer(), nullable=False),
        sa.Column("supported", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_templates")),
        sa.UniqueConstraint("channel", "name", "language", name=op.f("uq_provider_templates_channel_name_language")),
    )
    op.create_table(
        "outbox_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("provider_message_id", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_outbox_parts_outbox_id_outbox"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_parts")),
        sa.UniqueConstraint("channel", "provider_message_id",
                            name=op.f("uq_outbox_parts_channel_provider_message_id")),
    )
    op.create_index(op.f("ix_outbox_parts_outbox_id"), "outbox_parts", ["outbox_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_parts_outbox_id"), table_name="outbox_parts")
    op.drop_table("outbox_parts")
    op.drop_table("provider_templates")
