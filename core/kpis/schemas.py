"""KPI report requests and answers: the issue's field names in the totals and in every group."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class GroupBy(enum.StrEnum):
    day = "day"
    week = "week"
    month = "month"
    channel = "channel"
    queue = "queue"
    agent = "agent"
    intent = "intent"


TIME_GROUPS = (GroupBy.day, GroupBy.week, GroupBy.month)


class Metric(enum.StrEnum):
    """The figures a drill-down can open: the tickets behind each one (core/kpis/service.py tickets_behind)."""

    tickets = "tickets"
    resolved = "resolved"
    unresolved = "unresolved"
    first_response = "first_response"  # tickets with a first response by a person (behind the FRT figures)
    resolution = "resolution"  # resolved tickets (behind the resolution-time figures)
    fcr = "fcr"
    not_fcr = "not_fcr"
    contained = "contained"
    handoff = "handoff"
    complaint = "complaint"
    reopen = "reopen"
    sla_first_response_met = "sla_first_response_met"
    sla_first_response_breached = "sla_first_response_breached"
    sla_resolution_met = "sla_resolution_met"
    sla_resolution_breached = "sla_resolution_breached"
    csat = "csat"  # answered surveys
    csat_low = "csat_low"  # scores at or under the low-score threshold
    backlog = "backlog"  # not resolved at the end of the period


class KpiQuery(BaseModel):
    """A report: local dates `date_from`..`date_to` inclusive (the report time zone), grouped by `group_by`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    date_from: date
    date_to: date
    group_by: GroupBy = GroupBy.day


FIELD_DOCS: dict[str, str] = {
    "key": "The group: an ISO date (day; week: its Monday; month: its first day), a channel, a queue slug, an "
           "agent id, an intent name; null for tickets without a queue/agent/intent.",
    "label": "A human name for the key (queue name, agent name); the key itself otherwise.",
    "tickets": "Appeals (tickets, merged ones left out) created in the period: every figure below is about them.",
    "resolved": "Of those, resolved or closed now.",
    "first_response_median_s": "Median time to the first reply by a person, seconds: business seconds of the "
                               "ticket's SLA calendar when an SLA policy applies to it, else wall-clock seconds. "
                               "Nearest-rank; exact below 5 minutes, within 1.6% above.",
    "first_response_p90_s": "90th percentile (nearest rank) of the same.",
    "resolution_median_s": "Median time from creation to the (latest) resolution of the resolved tickets, in the "
                           "same seconds as the first response.",
    "resolution_p90_s": "90th percentile (nearest rank) of the same.",
    "fcr_rate": "First-contact resolution: resolved tickets never reopened and answered by at most one agent, "
                "over resolved tickets.",
    "containment_rate": "Bot containment: tickets resolved by the bot with no agent message, over tickets.",
    "handoff_rate": "Hand-over: tickets the bot passed to people (an escalation decision) or a person answered, "
                    "over tickets.",
    "complaint_rate": "Tickets whose intent is the complaint intent, over tickets.",
    "sla_first_response_met_rate": "First responses within the SLA target, over the tickets whose first-response "
                                   "target was met or breached (tickets without an SLA policy, or still running, "
                                   "are not counted).",
    "sla_resolution_met_rate": "Resolutions within the SLA target, over the tickets whose resolution target was "
                               "met or breached.",
    "csat_avg": "Average satisfaction score (1-5) of the answered surveys of these tickets.",
    "csat_responses": "Answered surveys.",
    "csat_distribution": "Answered surveys per score, \"1\"..\"5\".",
    "csat_surveys_sent": "Surveys sent.",
    "csat_response_rate": "Answered surveys over surveys sent.",
    "reopen_rate": "Tickets reopened at least once, over tickets ever resolved (resolved now or reopened).",
    "backlog": "Tickets created by the end of the period (any time before it too) and not resolved at its end; "
               "for totals, at the end of the range. A ticket resolved, reopened and resolved again counts as open "
               "until its latest resolution.",
}


class KpiRow(BaseModel):
    """The KPI figures of one group (or of the whole range: `totals`). Rates are 0..1; null when nothing to rate."""

    key: str | None = Field(default=None, description=FIELD_DOCS["key"])
    label: str | None = Field(default=None, description=FIELD_DOCS["label"])
    tickets: int = Field(description=FIELD_DOCS["tickets"])
    resolved: int = Field(description=FIELD_DOCS["resolved"])
    first_response_median_s: float | None = Field(description=FIELD_DOCS["first_response_median_s"])
    first_response_p90_s: float | None = Field(description=FIELD_DOCS["first_response_p90_s"])
    resolution_median_s: float | None = Field(description=FIELD_DOCS["resolution_median_s"])
    resolution_p90_s: float | None = Field(description=FIELD_DOCS["resolution_p90_s"])
    fcr_rate: float | None = Field(description=FIELD_DOCS["fcr_rate"])
    containment_rate: float | None = Field(description=FIELD_DOCS["containment_rate"])
    handoff_rate: float | None = Field(description=FIELD_DOCS["handoff_rate"])
    complaint_rate: float | None = Field(description=FIELD_DOCS["complaint_rate"])
    sla_first_response_met_rate: float | None = Field(description=FIELD_DOCS["sla_first_response_met_rate"])
    sla_resolution_met_rate: float | None = Field(description=FIELD_DOCS["sla_resolution_met_rate"])
    csat_avg: float | None = Field(description=FIELD_DOCS["csat_avg"])
    csat_responses: int = Field(description=FIELD_DOCS["csat_responses"])
    reopen_rate: float | None = Field(description=FIELD_DOCS["reopen_rate"])
    backlog: int = Field(description=FIELD_DOCS["backlog"])
    csat_distribution: dict[str, int] = Field(description=FIELD_DOCS["csat_distribution"])
    csat_surveys_sent: int = Field(description=FIELD_DOCS["csat_surveys_sent"])
    csat_response_rate: float | None = Field(description=FIELD_DOCS["csat_response_rate"])


KPI_FIELDS: tuple[str, ...] = (
    "tickets", "resolved", "first_response_median_s", "first_response_p90_s", "resolution_median_s",
    "resolution_p90_s", "fcr_rate", "containment_rate", "handoff_rate", "complaint_rate",
    "sla_first_response_met_rate", "sla_resolution_met_rate", "csat_avg", "csat_responses", "reopen_rate", "backlog",
)
"""The issue's fields, in its order (the export's columns after the key)."""


class KpiReport(BaseModel):
    """`GET /reports/kpis`: the figures of the whole range and of each group (groups in key order; time groups
    include empty periods)."""

    date_from: date
    date_to: date
    group_by: GroupBy
    time_zone: str = Field(description="Days, weeks (Monday first) and months are counted in this zone.")
    as_of: datetime | None = Field(description="The aggregates include every change up to this moment (the KPI "
                                               "job folds changes in every few seconds).")
    totals: KpiRow
    groups: list[KpiRow]


class KpiTicket(BaseModel):
    """One ticket behind a figure, with the facts the figures count."""

    id: int
    number: str
    created_at: datetime
    channel: str
    queue_id: int | None
    agent_id: int | None
    intent: str | None
    resolved_at: datetime | None
    first_response_s: float | None
    resolution_s: float | None
    reopened: bool
    csat_score: int | None


class KpiTicketPage(BaseModel):
    """A page of tickets in creation order (day, then id); `next_after` is the `after` of the next page (null: the
    last page)."""

    items: list[KpiTicket]
    next_after: int | None


class CountBucket(enum.StrEnum):
    hour = "hour"
    day = "day"


class CountDimension(enum.StrEnum):
    intent = "intent"
    channel = "channel"
    escalation_reason = "escalation_reason"
    queue = "queue"


@dataclass(frozen=True)
class CountRow:
    """Volume of one key in one bucket: `tickets` created in it, `escalations` decided in it (a decision to hand
    the ticket to people; by escalation_reason both are the escalations with that reason)."""

    key: str | None
    bucket_start: datetime
    tickets: int
    escalations: int
