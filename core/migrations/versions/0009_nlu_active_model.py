"""nlu active model and instances

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nlu_active_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_active_model")),
    )
    op.create_table(
        "nlu_instances",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_instances")),
    )
    with op.batch_alter_table("nlu_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nlu_instances_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nlu_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nlu_instances_seen_at"))
    op.drop_table("nlu_instances")
    op.drop_table("nlu_active_model")
