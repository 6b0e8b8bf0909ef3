"""nlu_data_items: ix_nlu_data_items_kind on (kind, name, position, id), the data items list's whole sort key

GET /admin/nlu/data-items pages by keyset in (kind, name, position, id) order. On (kind, name, position) alone the
planner misjudged the row-value condition of a cursor and read the whole table with a top-N sort (50,000 lookup
values: 12-24 ms a page, growing with the table); with id in the index a page is a bounded index range (0.2 ms).
The index keeps serving what it served (a table's values by kind and name, the next position of a table).

Revision ID: 0037
Revises: 0036
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_nlu_data_items_kind"


def upgrade() -> None:
    op.drop_index(NAME, table_name="nlu_data_items")
    op.create_index(NAME, "nlu_data_items", ["kind", "name", "position", "id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="nlu_data_items")
    op.create_index(NAME, "nlu_data_items", ["kind", "name", "position"])
