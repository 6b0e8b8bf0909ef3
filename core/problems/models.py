"""Rising-problem alerts (one row per episode) and the not-understood messages an admin turned into an intent."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow
from core.tickets.models import Message
from core.users.models import str_enum

# The decision reasons (core/decision/policy.py) of an escalation where the bot had no confident intent: what it
# did not understand. Kept on the inbound message's extra "reason".
NOT_UNDERSTOOD_REASONS = ("low_confidence", "nlu_unavailable")
_REASONS_SQL = ", ".join(f"'{r}'" for r in NOT_UNDERSTOOD_REASONS)
# Written out per dialect (and used verbatim by the queries) so the planner can match the partial index.
NOT_UNDERSTOOD_SQL = {
    "postgresql": f"direction = 'inbound' AND (extra ->> 'reason') IN ({_REASONS_SQL})",
    "sqlite": f"direction = 'inbound' AND json_extract(extra, '$.reason') IN ({_REASONS_SQL})",
}

# The clusters read the most recent not-understood messages of a period: a narrow partial index (a few per cent of
# the messages) on the messages table, which keeps the ingest cost to the rows it covers.
Index("ix_messages_not_understood", Message.created_at,
      postgresql_where=text(NOT_UNDERSTOOD_SQL["postgresql"]), sqlite_where=text(NOT_UNDERSTOOD_SQL["sqlite"]))


class Dimension(enum.StrEnum):
    """What a rising-problem alert watches."""

    intent = "intent"
    channel = "channel"


ACTIVE_SQL = "resolved_at IS NULL"


class ProblemAlert(Base):
    """One episode of a rising problem: raised once when the volume of an intent or a channel goes beyond its normal
    range, updated while it lasts, resolved when the volume is back to normal. At most one active row per
    (dimension, key): the unique partial index makes a second raise of the same episode impossible."""

    __tablename__ = "problem_alerts"
    __table_args__ = (
        Index("ux_problem_alerts_active", "dimension", "key", unique=True,
              postgresql_where=text(ACTIVE_SQL), sqlite_where=text(ACTIVE_SQL)),
        Index("ix_problem_alerts_raised", "raised_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dimension: Mapped[Dimension] = mapped_column(str_enum(Dimension))
    key: Mapped[str] = mapped_column(String(100))
    window_minutes: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # At the raise, and the latest evaluation:
    raised_count: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    usual: Mapped[float] = mapped_column(Float)  # the usual volume of the window (median of the baseline samples)
    ratio: Mapped[float] = mapped_column(Float)  # count / max(usual, 1)
    peak_count: Mapped[int] = mapped_column(Integer)
    peak_ratio: Mapped[float] = mapped_column(Float)


class HandledMessage(Base):
    """A not-understood message an admin handled from the clusters page: it belongs to a cluster made into an intent
    (`example`: its text became a training example of `intent`)."""

    __tablename__ = "problem_handled_messages"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    intent: Mapped[str] = mapped_column(String(64))
    example: Mapped[bool] = mapped_column(default=False)
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[datetime] = mapped_column(default=utcnow)
