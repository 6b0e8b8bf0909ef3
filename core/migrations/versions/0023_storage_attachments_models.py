"""attachments and NLU model versions in the database: several instances without a shared disk

`attachment_objects` (one row per key) and `attachment_chunks` (content-addressed chunks) back the `postgres`
attachment backend; `nlu_model_versions` holds each trained model's files, published by the instance that trained
it. Both databases (the `postgres` backend works on SQLite too; it is only useful with several instances).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachment_objects",
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("digest", sa.String(34), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attachment_objects")),
    )
    op.create_index(op.f("ix_attachment_objects_digest"), "attachment_objects", ["digest"])
    op.create_table(
        "attachment_chunks",
        sa.Column("digest", sa.String(34), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest", "seq", name=op.f("pk_attachment_chunks")),
    )
    op.create_table(
        "nlu_model_versions",
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("manifest", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_nlu_model_versions")),
    )


def downgrade() -> None:
    op.drop_table("nlu_model_versions")
    op.drop_table("attachment_chunks")
    op.drop_index(op.f("ix_attachment_objects_digest"), table_name="attachment_objects")
    op.drop_table("attachment_objects")
