"""The CSAT answer as the API shows it and as the REST channel submits it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_COMMENT = 2000  # characters of a survey comment, in every channel (core/csat/service.py add_comment)


class CsatRead(BaseModel):
    """A ticket's survey answer (`"csat"` in the ticket JSON)."""

    model_config = ConfigDict(from_attributes=True)
    score: int
    comment: str | None
    channel: str
    at: datetime
    flagged: bool = Field(default=False, description="at or under the low-score threshold: for the supervisor")


class CsatSubmit(BaseModel):
    """`POST /channels/rest/csat`: the customer's score (1-5) for a ticket, with an optional comment."""

    model_config = ConfigDict(extra="forbid")
    ticket_number: str = Field(min_length=1, max_length=32)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class QueueCsatUpdate(BaseModel):
    """A queue's survey settings (console: Queues)."""

    model_config = ConfigDict(extra="forbid")
    csat_enabled: bool
    csat_delay_minutes: int = Field(ge=0, le=10080)
