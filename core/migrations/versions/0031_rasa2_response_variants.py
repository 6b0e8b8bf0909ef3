"""rasa2: nlu_responses keeps every variant of an answer (position per intent and language)

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are the first (and only) variant of their language: position 0.
    with op.batch_alter_table("nlu_responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_constraint("uq_nlu_responses_intent_id_language", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_nlu_responses_intent_id_language_position"),
                                          ["intent_id", "language", "position"])


def downgrade() -> None:
    # Back to one answer per language: the later variants go, the first stays.
    op.execute("DELETE FROM nlu_responses WHERE position > 0")
    with op.batch_alter_table("nlu_responses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_nlu_responses_intent_id_language_position", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_nlu_responses_intent_id_language"),
                                          ["intent_id", "language"])
        batch_op.drop_column("position")
