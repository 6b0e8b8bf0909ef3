"""nlu admin

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "nlu_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_intents")),
        sa.UniqueConstraint("name", name=op.f("uq_nlu_intents_name")),
    )
    op.create_table(
        "nlu_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intent_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["nlu_intents.id"], name=op.f("fk_nlu_examples_intent_id_nlu_intents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_examples")),
        sa.UniqueConstraint("intent_id", "text", name=op.f("uq_nlu_examples_intent_id_text")),
    )
    with op.batch_alter_table("nlu_examples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nlu_examples_intent_id"), ["intent_id"], unique=False)

    op.create_table(
        "nlu_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intent_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["nlu_intents.id"], name=op.f("fk_nlu_responses_intent_id_nlu_intents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_responses")),
        sa.UniqueConstraint("intent_id", "language", name=op.f("uq_nlu_responses_intent_id_language")),
    )
    with op.batch_alter_table("nlu_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nlu_responses_intent_id"), ["intent_id"], unique=False)

    op.create_table(
        "nlu_training_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("queued", "running", "succeeded", "failed", name="jobstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=True),
        sa.Column("activate", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_nlu_training_jobs_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_training_jobs")),
    )
    with op.batch_alter_table("nlu_training_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nlu_training_jobs_state"), ["state"], unique=False)

    op.create_table(
        "nlu_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=False),
        sa.Column("predicted_intent", sa.String(length=100), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "accepted", "rejected", name="suggestionstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("suggested_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_nlu_suggestions_message_id_messages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_nlu_suggestions_reviewed_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["suggested_by"], ["users.id"], name=op.f("fk_nlu_suggestions_suggested_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_suggestions")),
    )
    with op.batch_alter_table("nlu_suggestions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nlu_suggestions_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nlu_suggestions_status"), ["status"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("nlu_suggestions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nlu_suggestions_status"))
        batch_op.drop_index(batch_op.f("ix_nlu_suggestions_message_id"))

    op.drop_table("nlu_suggestions")
    with op.batch_alter_table("nlu_training_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nlu_training_jobs_state"))

    op.drop_table("nlu_training_jobs")
    with op.batch_alter_table("nlu_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nlu_responses_intent_id"))

    op.drop_table("nlu_responses")
    with op.batch_alter_table("nlu_examples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nlu_examples_intent_id"))

    op.drop_table("nlu_examples")
    op.drop_table("nlu_intents")
