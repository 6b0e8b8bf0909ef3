"""nlu: the whole of an admin's Rasa data in the database - entity annotations and metadata of examples, metadata
of intents, and the data set's synonyms, regexes and lookups (until now taken from the shipped files)

A database seeded with the shipped intents gets the shipped synonyms, regexes and lookups as rows, so its
training and export stay what they were; a database holding only an admin's import gets none.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("nlu_intents", sa.Column("meta", JSON_TYPE, nullable=True))
    op.add_column("nlu_examples", sa.Column("entities", JSON_TYPE, nullable=True))
    op.add_column("nlu_examples", sa.Column("meta", JSON_TYPE, nullable=True))
    items = op.create_table(
        "nlu_data_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_data_items")),
    )
    op.create_index(op.f("ix_nlu_data_items_kind"), "nlu_data_items", ["kind", "name", "position"])
    shipped = op.get_bind().execute(sa.text("SELECT 1 FROM nlu_examples WHERE source = 'shipped' LIMIT 1")).first()
    if shipped is not None:
        from nlu.data import load_training_data

        default = load_training_data()
        rows = [{"kind": kind, "name": name, "value": value, "position": position}
                for kind, table in (("synonym", default.synonyms), ("regex", default.regexes),
                                    ("lookup", default.lookups))
                for name, values in table.items() for position, value in enumerate(values)]
        if rows:
            op.bulk_insert(items, rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_nlu_data_items_kind"), table_name="nlu_data_items")
    op.drop_table("nlu_data_items")
    with op.batch_alter_table("nlu_examples") as batch_op:
        batch_op.drop_column("meta")
        batch_op.drop_column("entities")
    with op.batch_alter_table("nlu_intents") as batch_op:
        batch_op.drop_column("meta")
