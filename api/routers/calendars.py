"""Admin routes for business-hours calendars (SLA policies and hand-over messages count in them)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Admin, DbSession, IdPath, Supervisor
from api.openapi import CONFLICT
from core.calendars import service as calendars
from core.calendars.schemas import CalendarCreate, CalendarRead, CalendarSummary, CalendarUpdate

router = APIRouter(prefix="/admin/calendars", tags=["admin"])


@router.get("", response_model=list[CalendarSummary])
async def list_calendars(session: DbSession, _user: Supervisor) -> list[CalendarSummary]:
    """Every calendar with its weekly hours (the dated exceptions are on each calendar's own page)."""
    return [calendars.summary(c) for c in await calendars.list_all(session)]


@router.get("/{calendar_id}", response_model=CalendarRead)
async def get_calendar(calendar_id: IdPath, session: DbSession, _user: Supervisor) -> CalendarRead:
    return calendars.read(await calendars.get(session, calendar_id))


@router.post("", response_model=CalendarRead, status_code=201, responses={**CONFLICT})
async def create_calendar(body: CalendarCreate, session: DbSession, actor: Admin) -> CalendarRead:
    """A new calendar; overlapping or reversed intervals, repeated dates or an unknown time zone are a 422."""
    return calendars.read(await calendars.create(session, body, actor))


@router.patch("/{calendar_id}", response_model=CalendarRead, responses={**CONFLICT})
async def update_calendar(calendar_id: IdPath, body: CalendarUpdate, session: DbSession,
                          actor: Admin) -> CalendarRead:
    """Change the fields given; `exceptions`, when given, replaces the whole list."""
    return calendars.read(await calendars.update(session, calendar_id, body, actor))


@router.delete("/{calendar_id}", status_code=204, responses={**CONFLICT})
async def delete_calendar(calendar_id: IdPath, session: DbSession, actor: Admin) -> None:
    """Delete a calendar; 409 naming what still counts in its hours (queues, SLA policies)."""
    await calendars.delete(session, calendar_id, actor)
