"""A ticket's satisfaction survey: sent once when the ticket is resolved, answered once (score 1-5, comment)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow


class CsatSurvey(Base):
    """One row per ticket (unique): it exists once the survey was sent; `score` is set by the one answer."""

    __tablename__ = "csat_surveys"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    channel: Mapped[str] = mapped_column(String(32))  # where the survey went
    language: Mapped[str | None] = mapped_column(String(8))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]
    answer_channel: Mapped[str | None] = mapped_column(String(32))  # where the answer came from
    # A low score flags the ticket for the supervisor (core/csat/service.py, CoreSettings.csat_low_score).
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
