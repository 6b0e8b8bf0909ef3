"""What the typical-problem API reads and returns: top lists, rising-problem alerts, clusters, make-an-intent."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.db.base import MAX_ID
from core.problems.models import Dimension

MAX_DAYS = 366
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
MAX_PICK = 500
MessageId = Annotated[int, Field(ge=1, le=MAX_ID)]


class TopDimension(enum.StrEnum):
    intent = "intent"
    escalation_reason = "escalation_reason"


class PeriodQuery(BaseModel):
    """A period of whole local days, both ends included (the KPI reports' time zone)."""

    model_config = ConfigDict(extra="forbid")
    date_from: date = Field(description="First day of the period (YYYY-MM-DD), included.")
    date_to: date = Field(description="Last day of the period (YYYY-MM-DD), included.")

    @model_validator(mode="after")
    def _range(self) -> Self:
        for day in (self.date_from, self.date_to):
            if not FIRST_DAY <= day <= LAST_DAY:  # as the KPI reports: the previous period stays computable
                raise ValueError(f"dates are between {FIRST_DAY} and {LAST_DAY}")
        if self.date_from > self.date_to:
            raise ValueError("from must not be after to")
        if (self.date_to - self.date_from).days + 1 > MAX_DAYS:
            raise ValueError(f"a period is at most {MAX_DAYS} days")
        return self

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1


class TopQuery(PeriodQuery):
    dimension: TopDimension = Field(default=TopDimension.intent, description="intent or escalation_reason")
    limit: int = Field(default=10, ge=1, le=100, description="How many of the top keys to list (the rest are "
                                                               "summed in `others`).")


class TopItem(BaseModel):
    key: str | None = Field(description="The intent or the escalation reason; null: tickets with no intent.")
    label: str = Field(description="The key in the caller's language (escalation reasons have human labels).")
    count: int = Field(description="Tickets created in the period with this intent / escalations with this reason.")
    share: float = Field(description="count / total of the period (0..1).")
    previous: int = Field(description="The same count in the previous period of the same length.")
    change: int = Field(description="count - previous.")
    change_pct: float | None = Field(description="change / previous x 100; null when previous is 0 (new).")


class TopReport(BaseModel):
    dimension: TopDimension
    date_from: date
    date_to: date
    previous_from: date
    previous_to: date
    time_zone: str
    total: int
    previous_total: int
    items: list[TopItem]
    others: int = Field(description="The count of every key below the listed ones.")


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    dimension: Dimension
    key: str
    window_minutes: int
    raised_at: datetime
    resolved_at: datetime | None
    evaluated_at: datetime
    raised_count: int = Field(description="Tickets in the window when the alert was raised.")
    count: int = Field(description="Tickets in the window at the latest evaluation.")
    usual: float = Field(description="The usual volume of the window: the median of the same hours over the "
                                     "baseline days.")
    ratio: float = Field(description="count / max(usual, 1) at the latest evaluation.")
    peak_count: int
    peak_ratio: float
    active: bool


class AlertPage(BaseModel):
    items: list[AlertRead]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null at the end.")


class SampleRead(BaseModel):
    message_id: int
    text: str
    count: int = Field(description="Messages with this text in the cluster (same words, case and digits aside).")
    handled_intent: str | None = None


class ClusterRead(BaseModel):
    key: int = Field(description="The cluster's smallest message id (stable while its messages are in the period).")
    size: int
    terms: list[str]
    samples: list[SampleRead] = Field(description="The most typical texts.")
    choices: list[SampleRead] = Field(description="The distinct texts an admin picks training examples from.")
    message_ids: list[int]
    first_at: datetime | None
    last_at: datetime | None
    handled_intent: str | None = Field(description="The intent this cluster was made into, if it was.")
    handled: int = Field(description="Messages of the cluster already handled.")


class ClusterReport(BaseModel):
    date_from: date
    date_to: date
    time_zone: str
    messages: int = Field(description="Not-understood messages in the period.")
    analysed: int = Field(description="How many of them were clustered (the most recent, up to the cap).")
    capped: bool
    clustered: int = Field(description="Analysed messages that fall in a shown cluster.")
    seconds: float = Field(description="How long the clustering took.")
    clusters: list[ClusterRead]


class MakeIntent(BaseModel):
    """Make a cluster an intent: the chosen texts become training examples of `intent` (created when new)."""

    model_config = ConfigDict(extra="forbid")
    intent: str = Field(min_length=1, max_length=64, description="An existing intent or a new name: 2-64 lower-case "
                                                                 "latin letters, digits and _, from a letter.")
    example_ids: list[MessageId] = Field(max_length=MAX_PICK, description="Messages whose texts become examples.")
    message_ids: list[MessageId] = Field(default_factory=list, max_length=20000,
                                   description="Every message of the cluster, marked handled (the examples too).")
    description: str = Field(default="", max_length=2000, description="For a new intent.")


class MadeIntent(BaseModel):
    intent: str
    created: bool = Field(description="The intent was new.")
    examples_added: list[str]
    examples_skipped: list[str] = Field(description="Texts the intent had already, or repeated in the choice.")
    handled: int
