"""jobs: due work (scheduled_tasks) and the channel cursors owned by core (IMAP checkpoints move in)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_checkpoints = sa.table("email_checkpoints", sa.column("mailbox", sa.String), sa.column("uidvalidity", sa.BigInteger),
                        sa.column("last_uid", sa.BigInteger), sa.column("updated_at", sa.DateTime(timezone=True)))
_cursors = sa.table("channel_cursors", sa.column("channel", sa.String), sa.column("name", sa.String),
                    sa.column("value", sa.Text), sa.column("updated_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.create_table(
        "scheduled_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("state", sa.Enum("pending", "done", "failed", name="taskstate", native_enum=False, length=16),
                  nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_tasks")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_scheduled_tasks_kind_key")),
    )
    op.create_index("ix_scheduled_tasks_due", "scheduled_tasks", ["state", "due_at"], unique=False)
    op.create_table(
        "channel_cursors",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "name", name=op.f("pk_channel_cursors")),
    )
    # The IMAP checkpoints become the email channel's cursors (the value is the channel's own: JSON here).
    conn = op.get_bind()
    naive = conn.dialect.name == "sqlite"
    rows = conn.execute(sa.select(_checkpoints)).all()
    if rows:
        conn.execute(_cursors.insert(), [
            {"channel": "email", "name": r.mailbox, "updated_at": _stamp(r.updated_at, naive),
             "value": json.dumps({"uidvalidity": int(r.uidvalidity), "last_uid": int(r.last_uid)})}
            for r in rows])
    op.drop_table("email_checkpoints")


def downgrade() -> None:
    op.create_table(
        "email_checkpoints",
        sa.Column("mailbox", sa.String(length=100), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name=op.f("pk_email_checkpoints")),
    )
    conn = op.get_bind()
    naive = conn.dialect.name == "sqlite"
    back = []
    for r in conn.execute(sa.select(_cursors).where(_cursors.c.channel == "email")).all():
        try:
            value = json.loads(r.value)
            back.append({"mailbox": r.name[:100], "uidvalidity": int(value["uidvalidity"]),
                         "last_uid": int(value["last_uid"]), "updated_at": _stamp(r.updated_at, naive)})
        except (ValueError, KeyError, TypeError):
            continue  # not a checkpoint this version can read: the mailbox starts afresh
    if back:
        conn.execute(_checkpoints.insert(), back)
    op.drop_table("channel_cursors")
    op.drop_index("ix_scheduled_tasks_due", table_name="scheduled_tasks")
    op.drop_table("scheduled_tasks")


def _stamp(value: datetime | str | None, naive: bool) -> datetime:
    """A timestamp as the models store it: UTC, and naive on SQLite (which hands it back naive, or as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is None:
        value = datetime.now(UTC)
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(tzinfo=None) if naive else value
