"""What the KPI engine keeps: one narrow facts row per ticket, per-period rollups, hourly volumes, its cursors.

Only the KPI fold job (core/kpis/fold.py) and the rebuild write these tables; the rest of the app never does, so
ingest and ticket changes pay nothing for them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, JSONType, utcnow


class KpiTicketFacts(Base):
    """A ticket's current contribution (core/kpis/facts.py TicketFacts): what the fold takes out when it changes.

    No foreign key: a deleted ticket's row stays until the fold has taken its contribution out of the rollups.
    """

    __tablename__ = "kpi_ticket_facts"
    __table_args__ = (Index("ix_kpi_ticket_facts_day", "day", "ticket_id"),)
    ticket_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    day: Mapped[date] = mapped_column(Date)
    resolved_at: Mapped[datetime | None]
    resolved_day: Mapped[date | None] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(32))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    intent: Mapped[str | None] = mapped_column(String(100))
    resolved: Mapped[bool] = mapped_column(Boolean)
    reopened: Mapped[bool] = mapped_column(Boolean)
    fcr: Mapped[bool] = mapped_column(Boolean)
    contained: Mapped[bool] = mapped_column(Boolean)
    handoff: Mapped[bool] = mapped_column(Boolean)
    complaint: Mapped[bool] = mapped_column(Boolean)
    frt_s: Mapped[int | None] = mapped_column(Integer)
    res_s: Mapped[int | None] = mapped_column(Integer)
    sla_fr: Mapped[bool | None] = mapped_column(Boolean)
    sla_res: Mapped[bool | None] = mapped_column(Boolean)
    csat_sent: Mapped[bool] = mapped_column(Boolean)
    csat_score: Mapped[int | None] = mapped_column(Integer)
    csat_low: Mapped[bool] = mapped_column(Boolean)
    # [[iso moment, reason], ...] of each escalation decision (the hourly counts take them out again).
    escalations: Mapped[list[Any]] = mapped_column(JSONType, default=list)


class KpiRollup(Base):
    """The additive figures of the tickets created in one local day (grain "d") or month (grain "m") with one key
    of one dimension ("all" with key ""; channel; queue id; agent id; intent; "" for none). `resolved_out` counts
    the tickets whose resolution fell in the period (backlog). `frt`/`res` are the duration histograms, packed
    (core/kpis/facts.py ENTRY: bucket, count, sum per bucket)."""

    __tablename__ = "kpi_rollups"
    # Primary key in this order: every read is one dimension, one grain and a range of periods.
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    tickets: Mapped[int] = mapped_column(BigInteger, default=0)
    resolved: Mapped[int] = mapped_column(BigInteger, default=0)
    ever_resolved: Mapped[int] = mapped_column(BigInteger, default=0)
    fcr: Mapped[int] = mapped_column(BigInteger, default=0)
    contained: Mapped[int] = mapped_column(BigInteger, default=0)
    handoff: Mapped[int] = mapped_column(BigInteger, default=0)
    complaint: Mapped[int] = mapped_column(BigInteger, default=0)
    reopened: Mapped[int] = mapped_column(BigInteger, default=0)
    sla_fr_met: Mapped[int] = mapped_column(BigInteger, default=0)
    sla_fr_breached: Mapped[int] = mapped_column(BigInteger, default=0)
    sla_res_met: Mapped[int] = mapped_column(BigInteger, default=0)
    sla_res_breached: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_responses: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_1: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_2: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_3: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_4: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_5: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_low: Mapped[int] = mapped_column(BigInteger, default=0)
    resolved_out: Mapped[int] = mapped_column(BigInteger, default=0)
    frt: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    res: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class KpiHourly(Base):
    """Tickets created and escalations decided in one UTC hour per key of a dimension (intent, channel, queue,
    escalation_reason): the volumes typical-problem analysis compares (core/kpis/service.py counts)."""

    __tablename__ = "kpi_hourly"
    dimension: Mapped[str] = mapped_column(String(24), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    escalations: Mapped[int] = mapped_column(Integer, default=0)


class KpiState(Base):
    """The fold's own state under a name ("fold"): its cursors, the time zone the rollups are in, as-of."""

    __tablename__ = "kpi_state"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
