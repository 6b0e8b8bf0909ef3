"""Admin → SLA and Admin → Calendars: SLA policies and business-hours calendars edited through forms, over
`core.sla.service` and `core.calendars.service` (the same rules and 422/409 reasons as the API).

Admins change; supervisors read (the API's role rules). A form the service refuses is drawn again with the reason
and every value as typed, and the request's unit of work is rolled back (a refused update may have changed some
fields of the loaded row before the check that failed).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from api.console.render import render
from api.console.routes import redirect, validated
from api.console.security import ConsoleAdmin, ConsoleSupervisor, CsrfChecked
from api.deps import DbSession, IdPath, State
from channels.registry import FACTORIES
from core.calendars import business_time
from core.calendars import repository as calendar_repo
from core.calendars import service as calendars
from core.calendars.models import Calendar
from core.calendars.schemas import INTERVAL_PATTERN, WEEKDAYS, CalendarCreate, CalendarUpdate
from core.errors import ConflictError, DomainError, ValidationFailedError
from core.events import discard_pending
from core.i18n import Translator, translator
from core.nlu_admin import service as nlu_admin
from core.sla import service as sla
from core.sla.schemas import SlaPolicyCreate, SlaPolicyRead, SlaPolicyUpdate
from core.tickets import service as ticket_service
from core.tickets.models import Priority
from core.users import service as users
from core.users.models import Role, User

router = APIRouter(prefix="/console/admin", include_in_schema=False)
SLA = "/console/admin/sla"
CALENDARS = "/console/admin/calendars"
LEVELS = ("on_warning", "on_breach")
TARGET_FIELDS = ("first_response_minutes", "next_response_minutes", "resolution_minutes")
WHOLE = re.compile(r"-?[0-9]{1,9}")
DECIMAL = re.compile(r"-?[0-9]{1,9}(?:[.,][0-9]{1,6})?")
CLOSED_WORDS = frozenset({"closed", "выходной", "закрыто", "-", "—"})
# A token taken for hours (then checked strictly): digits with a ":" or a dash; "9" or "9 May" starts a note.
HOURS_LIKE = re.compile(r"[0-9.]*[0-9][:\-–][0-9:.\-–,;]*")


def _is_admin(user: User) -> bool:
    return user.role.rank >= Role.admin.rank


@dataclass
class FormError:
    """The reason a form was refused, and the field it names (drawn beside that field) when the service said."""

    message: str
    field: str | None = None
    hints: list[str] = dataclasses.field(default_factory=list)


async def _undo(session: DbSession, actor: User) -> None:
    """Roll back what a refused change did (and the events it queued); the signed-in user is read again, as the
    page drawn next needs their role."""
    await session.rollback()
    discard_pending(session)
    await session.refresh(actor)


def _error_of(exc: DomainError, _: Translator) -> FormError:
    name = exc.details.get("field")
    hints = [_("slaform.warning_share_range")] if name == "warning_share" else []
    return FormError(exc.message, name if isinstance(name, str) else None, hints)


def _number(text: str) -> int | str | None:
    """A whole number typed into a form; empty is None, anything else goes on as typed for the schema to refuse."""
    text = text.strip()
    if not text:
        return None
    return int(text) if WHOLE.fullmatch(text) else text


def _share(percent: str) -> float | str | None:
    """"80" (%) -> 0.8; the service checks the range, the schema refuses what is not a number."""
    text = percent.strip().rstrip("%").strip()
    if not text:
        return None
    return float(text.replace(",", ".")) / 100 if DECIMAL.fullmatch(text) else text


def _percent(share: float) -> str:
    return f"{share * 100:g}"


# --- SLA policies ----------------------------------------------------------------------------------------------


def _policy_form(form: FormData) -> dict[str, Any]:
    """The posted policy form as the page draws it again (strings and lists, exactly as typed)."""
    data: dict[str, Any] = {
        "name": str(form.get("name", "")), "position": str(form.get("position", "")),
        "enabled": form.get("enabled") == "on", "calendar_id": str(form.get("calendar_id", "")),
        "warning_percent": str(form.get("warning_percent", "")),
        **{key: [str(v) for v in form.getlist(key)] for key in ("queues", "priorities", "channels", "intents")},
        **{name: str(form.get(name, "")) for name in TARGET_FIELDS}}
    for level in LEVELS:
        data[level] = {"raise_priority": form.get(f"{level}.raise_priority") == "on",
                       "move_to_queue": str(form.get(f"{level}.move_to_queue", "")),
                       "unassign": form.get(f"{level}.unassign") == "on"}
    return data


def _policy_form_of(policy: SlaPolicyRead) -> dict[str, Any]:
    return {"name": policy.name, "position": str(policy.position), "enabled": policy.enabled,
            "calendar_id": str(policy.calendar_id), "warning_percent": _percent(policy.warning_share),
            "queues": policy.queues, "priorities": [p.value for p in policy.priorities], "channels": policy.channels,
            "intents": policy.intents,
            **{name: str(getattr(policy, name) or "") for name in TARGET_FIELDS},
            **{level: {**getattr(policy, level).model_dump(),
                       "move_to_queue": getattr(policy, level).move_to_queue or ""} for level in LEVELS}}


def _policy_values(data: dict[str, Any]) -> dict[str, Any]:
    """Form values -> the schema's fields; every field is sent, so an edit can also clear a target or a match (an
    empty order keeps the policy's; a new one gets the service's default)."""
    return {
        "name": data["name"], "position": _number(data["position"]), "enabled": data["enabled"],
        "queues": data["queues"], "priorities": data["priorities"], "channels": data["channels"],
        "intents": data["intents"], "calendar_id": _number(data["calendar_id"]),
        "warning_share": _share(data["warning_percent"]),
        **{name: _number(data[name]) for name in TARGET_FIELDS},
        **{level: {**data[level], "move_to_queue": data[level]["move_to_queue"] or None} for level in LEVELS}}


async def _policy_page(request: Request, session: DbSession, user: User, form: dict[str, Any],
                       policy_id: int | None, error: FormError | None = None, status_code: int = 200) -> Response:
    teams = await users.list_teams(session)
    known_channels = sorted({*FACTORIES, *await ticket_service.channels_in_use(session), *form["channels"]})
    known_intents = sorted({*await nlu_admin.intent_names(session), *form["intents"]})
    return render(request, "admin_sla_form.html", {
        "section": "sla", "form": form, "policy_id": policy_id, "error": error, "can_edit": _is_admin(user),
        "teams": teams, "priorities": list(Priority), "channels": known_channels, "intents": known_intents,
        "calendars": await calendars.list_all(session), "levels": LEVELS, "targets": TARGET_FIELDS,
    }, status_code=status_code)


@router.get("/sla")
async def sla_policies(request: Request, session: DbSession, user: ConsoleSupervisor) -> Response:
    """The SLA policies in match order (a ticket gets the first enabled one that matches it)."""
    policies = await sla.policies_read(session, await sla.list_policies(session))
    names = {c.id: c.name for c in await calendars.list_all(session)}
    return render(request, "admin_sla.html", {"section": "sla", "policies": policies, "calendars": names,
                                              "can_edit": _is_admin(user)})


@router.get("/sla/new")
async def new_policy(request: Request, session: DbSession, user: ConsoleAdmin) -> Response:
    existing = await sla.list_policies(session)
    first_calendar = next(iter(await calendars.list_all(session)), None)
    form = {"name": "", "position": str(max((p.position for p in existing), default=90) + 10), "enabled": True,
            "calendar_id": str(first_calendar.id) if first_calendar else "", "warning_percent": "80",
            "queues": [], "priorities": [], "channels": [], "intents": [],
            **dict.fromkeys(TARGET_FIELDS, ""),
            **{level: {"raise_priority": False, "move_to_queue": "", "unassign": False} for level in LEVELS}}
    return await _policy_page(request, session, user, form, None)


@router.post("/sla", dependencies=[CsrfChecked])
async def create_policy(request: Request, session: DbSession, actor: ConsoleAdmin) -> Response:
    _ = translator(actor.language)
    data = _policy_form(await request.form())
    try:
        body: SlaPolicyCreate = validated(SlaPolicyCreate, **_policy_values(data))
        policy = await sla.create_policy(session, body, actor)
    except (ValidationFailedError, ConflictError) as exc:
        await _undo(session, actor)
        return await _policy_page(request, session, actor, data, None, _error_of(exc, _), exc.status_code)
    return redirect(SLA, _("slaform.policy_saved", name=policy.name))


@router.get("/sla/{policy_id}")
async def policy_page(request: Request, policy_id: IdPath, session: DbSession, user: ConsoleSupervisor
                      ) -> Response:
    """The policy's form; a supervisor sees it read-only."""
    policy = (await sla.policies_read(session, [await sla.get_policy(session, policy_id)]))[0]
    return await _policy_page(request, session, user, _policy_form_of(policy), policy_id)


@router.post("/sla/{policy_id}", dependencies=[CsrfChecked])
async def update_policy(request: Request, policy_id: IdPath, session: DbSession, actor: ConsoleAdmin
                        ) -> Response:
    _ = translator(actor.language)
    await sla.get_policy(session, policy_id)  # an unknown policy is a 404, not a form
    data = _policy_form(await request.form())
    try:
        body: SlaPolicyUpdate = validated(SlaPolicyUpdate, **_policy_values(data))
        policy = await sla.update_policy(session, policy_id, body, actor)
    except (ValidationFailedError, ConflictError) as exc:
        await _undo(session, actor)
        return await _policy_page(request, session, actor, data, policy_id, _error_of(exc, _), exc.status_code)
    return redirect(SLA, _("slaform.policy_saved", name=policy.name))


@router.get("/sla/{policy_id}/delete")
async def confirm_delete_policy(request: Request, policy_id: IdPath, session: DbSession, actor: ConsoleAdmin
                                ) -> Response:
    policy = await sla.get_policy(session, policy_id)
    _ = translator(actor.language)
    return render(request, "admin_confirm_delete.html", {
        "section": "sla", "question": _("slaform.delete_question", name=policy.name),
        "detail": _("slaform.delete_detail"), "action": f"{SLA}/{policy_id}/delete", "back": f"{SLA}/{policy_id}",
        "error": None})


@router.post("/sla/{policy_id}/delete", dependencies=[CsrfChecked])
async def delete_policy(policy_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    policy = await sla.get_policy(session, policy_id)
    name = policy.name
    await sla.delete_policy(session, policy_id, actor)
    return redirect(SLA, translator(actor.language)("slaform.policy_deleted", name=name))


# --- calendars -------------------------------------------------------------------------------------------------


@dataclass
class CalendarStatus:
    """Whether a calendar is open now, and when it next opens, in its own time zone (how a person checks it)."""

    open_now: bool
    next_opening: str
    used_by: list[str]


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


async def _status(session: DbSession, calendar: Calendar, now: datetime) -> CalendarStatus:
    hours = calendars.business_calendar(calendar)
    return CalendarStatus(open_now=business_time.is_open(hours, now),
                          next_opening=_local(business_time.next_opening(hours, now), calendar.time_zone),
                          used_by=await calendars.users_of(session, calendar.id))


def _intervals(text: str, where: str, _: Translator) -> list[str]:
    """"9:00-13:00, 14:00-18:00" -> ["09:00-13:00", "14:00-18:00"]; a piece that is not hours is refused by
    name (overlaps and reversed intervals are the service's to refuse)."""
    result = []
    for piece in re.split(r"[,;\s]+", text.strip()):
        if not piece:
            continue
        normal = "-".join(part.zfill(5) if re.fullmatch(r"[0-9]:[0-5][0-9]", part) else part
                          for part in piece.replace("–", "-").split("-"))
        if not re.fullmatch(INTERVAL_PATTERN, normal):
            raise ValidationFailedError(_("calendars.bad_hours", where=where, text=piece), field=where)
        result.append(normal)
    return result


def _exceptions(text: str, _: Translator) -> list[dict[str, Any]]:
    """One date a line: "2026-01-01 closed New Year", "2026-12-31 09:00-16:00 shortened day"; no hours means
    closed."""
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            day = date.fromisoformat(tokens[0])
        except ValueError:
            raise ValidationFailedError(_("calendars.bad_date", line=number, text=tokens[0]),
                                        field="exceptions") from None
        hours: list[str] = []
        rest = tokens[1:]
        if rest and rest[0].lower() in CLOSED_WORDS:
            rest.pop(0)  # closed all day: what follows is the note, whatever it starts with
        else:
            while rest and HOURS_LIKE.fullmatch(rest[0].rstrip(",;")):
                hours += _intervals(rest.pop(0), _("calendars.line", line=number), _)
        items.append({"day": day, "hours": hours, "note": " ".join(rest) or None})
    return items


def _calendar_form(form: FormData) -> dict[str, Any]:
    return {"name": str(form.get("name", "")), "time_zone": str(form.get("time_zone", "")),
            "weekly": {day: str(form.get(f"weekly.{day}", "")) for day in WEEKDAYS},
            "exceptions": str(form.get("exceptions", ""))}


def _calendar_form_of(calendar: Calendar) -> dict[str, Any]:
    lines = [" ".join([e.day.isoformat(), *(e.intervals or ["closed"]), *([e.note] if e.note else [])])
             for e in calendar.exceptions]
    return {"name": calendar.name, "time_zone": calendar.time_zone,
            "weekly": {day: ", ".join(calendar.weekly.get(day, [])) for day in WEEKDAYS},
            "exceptions": "\n".join(lines)}


def _calendar_values(data: dict[str, Any], _: Translator) -> dict[str, Any]:
    weekly = {day: _intervals(data["weekly"][day], _("weekday." + day), _) for day in WEEKDAYS}
    return {"name": data["name"], "time_zone": data["time_zone"], "weekly": weekly,
            "exceptions": _exceptions(data["exceptions"], _)}


async def _calendar_page(request: Request, session: DbSession, state: State, user: User, form: dict[str, Any],
                         calendar: Calendar | None, error: FormError | None = None, status_code: int = 200
                         ) -> Response:
    status = await _status(session, calendar, state.clock.now()) if calendar is not None else None
    return render(request, "admin_calendar_form.html", {
        "section": "calendars", "form": form, "calendar_id": calendar.id if calendar else None, "status": status,
        "error": error, "can_edit": _is_admin(user), "weekdays": WEEKDAYS, "zones": calendars.zone_names(),
    }, status_code=status_code)


@router.get("/calendars")
async def calendar_list(request: Request, session: DbSession, state: State, user: ConsoleSupervisor) -> Response:
    """Every calendar with its zone, what counts in it, and whether it is open now."""
    now = state.clock.now()
    rows = [(c, await _status(session, c, now)) for c in await calendar_repo.list_with_exceptions(session)]
    return render(request, "admin_calendars.html", {"section": "calendars", "rows": rows,
                                                    "can_edit": _is_admin(user)})


@router.get("/calendars/new")
async def new_calendar(request: Request, session: DbSession, state: State, user: ConsoleAdmin) -> Response:
    form = {"name": "", "time_zone": "Europe/Moscow", "exceptions": "",
            "weekly": {day: "09:00-18:00" if day not in ("sat", "sun") else "" for day in WEEKDAYS}}
    return await _calendar_page(request, session, state, user, form, None)


@router.post("/calendars", dependencies=[CsrfChecked])
async def create_calendar(request: Request, session: DbSession, state: State, actor: ConsoleAdmin) -> Response:
    _ = translator(actor.language)
    data = _calendar_form(await request.form())
    try:
        body: CalendarCreate = validated(CalendarCreate, **_calendar_values(data, _))
        calendar = await calendars.create(session, body, actor)
    except (ValidationFailedError, ConflictError) as exc:
        await _undo(session, actor)
        return await _calendar_page(request, session, state, actor, data, None, _error_of(exc, _),
                                    exc.status_code)
    return redirect(f"{CALENDARS}/{calendar.id}", _("calendars.saved", name=calendar.name))


@router.get("/calendars/{calendar_id}")
async def calendar_page(request: Request, calendar_id: IdPath, session: DbSession, state: State,
                        user: ConsoleSupervisor) -> Response:
    """The calendar's form with whether it is open now and its next opening; a supervisor sees it read-only."""
    calendar = await calendars.get(session, calendar_id)
    return await _calendar_page(request, session, state, user, _calendar_form_of(calendar), calendar)


@router.post("/calendars/{calendar_id}", dependencies=[CsrfChecked])
async def update_calendar(request: Request, calendar_id: IdPath, session: DbSession, state: State,
                          actor: ConsoleAdmin) -> Response:
    _ = translator(actor.language)
    await calendars.get(session, calendar_id)
    data = _calendar_form(await request.form())
    try:
        body: CalendarUpdate = validated(CalendarUpdate, **_calendar_values(data, _))
        calendar = await calendars.update(session, calendar_id, body, actor)
    except (ValidationFailedError, ConflictError) as exc:
        await _undo(session, actor)
        return await _calendar_page(request, session, state, actor, data,
                                    await calendars.get(session, calendar_id), _error_of(exc, _), exc.status_code)
    return redirect(f"{CALENDARS}/{calendar.id}", _("calendars.saved", name=calendar.name))


async def _confirm_calendar_delete(request: Request, session: DbSession, actor: User, calendar: Calendar,
                                   error: str | None = None, status_code: int = 200) -> Response:
    _ = translator(actor.language)
    used_by = await calendars.users_of(session, calendar.id)
    return render(request, "admin_confirm_delete.html", {
        "section": "calendars", "question": _("calendars.delete_question", name=calendar.name),
        "detail": _("calendars.in_use", names=", ".join(used_by)) if used_by else _("calendars.delete_detail"),
        "action": f"{CALENDARS}/{calendar.id}/delete", "back": f"{CALENDARS}/{calendar.id}", "error": error,
    }, status_code=status_code)


@router.get("/calendars/{calendar_id}/delete")
async def confirm_delete_calendar(request: Request, calendar_id: IdPath, session: DbSession, actor: ConsoleAdmin
                                  ) -> Response:
    return await _confirm_calendar_delete(request, session, actor, await calendars.get(session, calendar_id))


@router.post("/calendars/{calendar_id}/delete", dependencies=[CsrfChecked])
async def delete_calendar(request: Request, calendar_id: IdPath, session: DbSession, actor: ConsoleAdmin
                          ) -> Response:
    calendar = await calendars.get(session, calendar_id)
    name = calendar.name
    try:
        await calendars.delete(session, calendar_id, actor)
    except ConflictError as exc:  # in use by a queue or a policy: say by which, keep the calendar
        await _undo(session, actor)
        return await _confirm_calendar_delete(request, session, actor, await calendars.get(session, calendar_id),
                                              exc.message, exc.status_code)
    return redirect(CALENDARS, translator(actor.language)("calendars.deleted", name=name))
