"""Outages and mass problems: one cause, many appeals (eTOM Problem Handling).

An incident names what it is about (intents) and whom it touches: an area - a region prefix matched against the
region of the customers' contracts (where the service is delivered) - and/or a list of customers. The affected
customers are written down when it opens (`incident_customers`); the appeals it answered are linked
(`incident_tickets`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core.contracts.models import RegionType
from core.db.base import Base, JSONType, utcnow
from core.users.models import str_enum


class IncidentStatus(enum.StrEnum):
    open = "open"
    resolved = "resolved"


OPEN_SQL = "status = 'open'"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # The open incidents are read for every ingest batch (a cached copy): a handful of rows among years of them.
        Index("ix_incidents_open", "id", postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    message_en: Mapped[str] = mapped_column(Text)
    message_ru: Mapped[str] = mapped_column(Text)
    intents: Mapped[list[str]] = mapped_column(JSONType, default=list)
    area: Mapped[str | None] = mapped_column(RegionType)
    status: Mapped[IncidentStatus] = mapped_column(str_enum(IncidentStatus), default=IncidentStatus.open)
    notify_affected: Mapped[bool] = mapped_column(Boolean, default=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("problem_alerts.id", ondelete="SET NULL"))
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened_via: Mapped[str | None] = mapped_column(String(100))  # the integration key's name
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution_en: Mapped[str | None] = mapped_column(Text)
    resolution_ru: Mapped[str | None] = mapped_column(Text)
    affected_count: Mapped[int] = mapped_column(Integer, default=0)


class IncidentSource(enum.StrEnum):
    listed = "listed"  # named in the incident's customer list
    area = "area"  # a contract of theirs is in the area


class IncidentCustomer(Base):
    """A customer the incident affects, as known when it opened; the broadcast walks these by customer id."""

    __tablename__ = "incident_customers"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)
    source: Mapped[IncidentSource] = mapped_column(str_enum(IncidentSource))


class IncidentTicket(Base):
    """An appeal the incident answered: told of the fix, and resolved, when the incident is resolved."""

    __tablename__ = "incident_tickets"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
