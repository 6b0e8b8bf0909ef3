"""The agent, supervisor and admin console: server-rendered pages, plain forms, live updates over SSE."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from api.console.render import SECURITY_HEADERS, render
from api.console.security import (
    LOGIN_CSRF_COOKIE,
    ConsoleAdmin,
    ConsoleSupervisor,
    ConsoleUser,
    CsrfChecked,
    clear_session_cookie,
    new_login_csrf,
    set_flash,
    set_session_cookie,
    user_from_cookie,
)
from api.deps import DbSession, IdPath, State
from api.routers.attachments import download_response
from channels.setup import service as channel_setup
from channels.setup.kinds import KINDS
from core.assignment import service as assignment
from core.attachments import service as attachment_service
from core.attachments.schemas import AttachmentRef
from core.audit import service as audit
from core.audit.models import AuditEntry
from core.auth import service as login_guard
from core.auth.errors import AccountLockedError, LoginThrottledError
from core.calendars import service as calendar_service
from core.canned import service as canned_service
from core.canned.schemas import CannedResponseCreate, CannedResponseUpdate
from core.channel_configs import repository as channel_configs
from core.csat import service as csat_service
from core.customers import service as customer_service
from core.db.base import MAX_ID, parse_id
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.events import BRIDGE_TOPIC, RESYNC_TOPIC, Topic
from core.i18n import LANGUAGES, Translator, preferred_language, translator
from core.nlu_admin import service as nlu_admin
from core.outbox import service as outbox_service
from core.presence import service as presence_service
from core.presence.service import PresenceRelay
from core.problems import service as problems
from core.provider_templates import repository as template_repository
from core.provider_templates import service as template_service
from core.quarantine import service as quarantine
from core.queues import service as queues
from core.queues.schemas import QueueSettingsUpdate
from core.reports import service as reports
from core.routing import service as routing
from core.sla import service as sla_service
from core.tags import service as tag_service
from core.tickets import service as ticket_service
from core.tickets.errors import NotAssigneeError, TicketHeldError
from core.tickets.models import AuthorKind, Priority, Ticket, TicketStatus
from core.tickets.repository import COUNT_CAP, latest_customer_message_at
from core.tickets.schemas import ExpectedHolder, Holder
from core.unread import service as unread_service
from core.users import service as users
from core.users.models import AssignmentMode, Role, User
from core.users.schemas import TeamCreate, UserCreate, UserUpdate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)
LIVE_TOPICS = (Topic.TICKETS, Topic.MESSAGES, Topic.OUTBOX_QUEUED, Topic.OUTBOX_SENT, Topic.OUTBOX_FAILED)
# EventSource reconnects by itself; a bounded stream never holds a server shutdown for long.
STREAM_SECONDS = 55.0
KEEPALIVE_SECONDS = 15.0
PAGE_SIZE = 50
MAX_REPLY_FILES = 10
TAG_SUGGESTIONS = 500  # the names a ticket page suggests (the list a team keeps is far shorter)
PRESENCE_SIGNAL_SECONDS = 5.0  # a channel's typing signal (Telegram) waits no longer than this


def redirect(url: str, flash: str | None = None, kind: str = "info") -> RedirectResponse:
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    if flash:
        set_flash(response, flash, kind)
    return response


def safe_next(value: str | None, default: str = "/console/inbox") -> str:
    """Only same-site console paths are accepted as redirect targets."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or value.startswith("//"):
        return default
    return value


def ticket_id_of(ref: str) -> int:
    return ticket_service.ticket_id_from_ref(ref)


def ticket_url(ticket: Ticket | int) -> str:
    from core.tickets.models import format_ticket_number

    return f"/console/tickets/{format_ticket_number(ticket if isinstance(ticket, int) else ticket.id)}"


def _form_count(value: str, *, default: int) -> int | str:
    """A whole number typed into a form (the schemas take numbers strictly); anything else goes on as typed, for
    the schema to refuse with its message."""
    value = value.strip()
    if not value:
        return default
    return int(value) if re.fullmatch(r"[0-9]{1,9}", value) else value


def _languages(value: str) -> list[str]:
    """Languages typed into a form: "ru, en" or "ru en" -> ["ru", "en"] (the schema checks each code)."""
    return [code for code in re.split(r"[\s,;]+", value.strip().lower()) if code]


def validated(model: type[Any], **values: Any) -> Any:
    """Build a pydantic model from form values; its errors become one readable domain error."""
    try:
        return model(**values)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValidationFailedError(reasons) from None


# --- sign in / out, language ---------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, session: DbSession, next: str | None = None) -> Response:
    if await user_from_cookie(session, request) is not None:
        return redirect(safe_next(next))
    token = new_login_csrf()
    response = render(request, "login.html", {"login_csrf": token, "next": safe_next(next), "error": None})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="lax", path="/console")
    return response


@router.post("/login")
async def login(request: Request, session: DbSession, state: State, email: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "") -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    _ = translator(request.cookies.get("sb_lang") or preferred_language(request.headers.get("accept-language")))
    if not cookie or not csrf_token or cookie != csrf_token:
        return redirect("/console/login", _("csrf.failed"), "error")
    address = state.limits.proxies.client_address(request)
    try:
        user = await login_guard.authenticate(session, state.settings.login, email, password, address,
                                              state.clock.now())
    except LoginThrottledError as exc:
        page = _login_again(request, next, email, throttled_text(_, exc), 429)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if user is None:  # the failure is counted: this answer is not an error, so the request's unit commits it
        return _login_again(request, next, email, _("login.failed"), 401)
    ttl = timedelta(hours=state.settings.token_ttl_hours)
    token = await users.issue_token(session, user, ttl)
    audit.record(session, user, "console.login", "user", user.id)
    response = redirect(safe_next(next))
    set_session_cookie(response, token, int(ttl.total_seconds()), secure=state.limits.proxies.is_https(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


def _login_again(request: Request, next: str, email: str, error: str, status_code: int) -> Response:
    token = new_login_csrf()
    page = render(request, "login.html", {"login_csrf": token, "next": safe_next(next), "email": email,
                                          "error": error}, status_code=status_code)
    page.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="lax", path="/console")
    return page


def throttled_text(_: Translator, exc: LoginThrottledError) -> str:
    """When to try again, in the reader's language: "in 2 min (at 14:05 UTC)"."""
    wait = (_("wait.seconds", n=exc.retry_after) if exc.retry_after < 120
            else _("wait.minutes", n=math.ceil(exc.retry_after / 60)))
    key = "login.locked" if isinstance(exc, AccountLockedError) else f"login.throttled.{exc.scope}"
    return _(key, wait=wait, at=exc.until.strftime("%H:%M"))


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request, session: DbSession, user: ConsoleUser) -> Response:
    token = request.cookies.get("sb_session")
    if token:
        await users.revoke_token(session, token)
    response = redirect("/console/login", translator(user.language)("logout.done"))
    clear_session_cookie(response)
    response.set_cookie("sb_lang", user.language, max_age=3600 * 24 * 365, samesite="lax", path="/console")
    return response


@router.post("/language", dependencies=[CsrfChecked])
async def set_language(request: Request, user: ConsoleUser, session: DbSession,
                       language: Annotated[str, Form()] = "en", back: Annotated[str, Form()] = "") -> Response:
    if language not in LANGUAGES:
        raise ValidationFailedError(f"unsupported language {language!r}")
    if user.language != language:
        audit.record(session, user, "user.language", "user", user.id, old=user.language, new=language)
        user.language = language
    return redirect(safe_next(back or request.headers.get("referer", "")))


@router.get("")
@router.get("/")
async def home() -> Response:
    return redirect("/console/inbox")


# --- inbox ---------------------------------------------------------------------------------------------


INBOX_SORTS = ("waiting", "due")


@dataclass(frozen=True)
class InboxFields:
    """The inbox filter form's fields beyond the view, as typed (unknown values filter nothing)."""

    queue: str | None = None
    status: str | None = None
    priority: str | None = None
    channel: str | None = None
    assignee: str | None = None
    q: str | None = None
    intent: str | None = None
    created_from: str | None = None  # a local date (YYYY-MM-DD) of the report time zone, inclusive
    created_to: str | None = None
    tag: str | None = None  # tag names, comma-separated (the filter's multiple choice, joined)

    def as_form(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) or "" for f in fields(self)}


def _local_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:  # the form's date input sends ISO dates; anything else filters nothing
        return None


def _inbox_filter_args(user: User, view: str, form: InboxFields, zone: ZoneInfo, sort: str = "waiting"
                       ) -> tuple[str, Any, dict[str, str]]:
    view = view if view in ticket_service.INBOX_VIEWS else "all"
    status, priority, assignee = form.status, form.priority, form.assignee
    statuses = [TicketStatus(status)] if status and status in TicketStatus.__members__ else []
    priorities = [Priority(priority)] if priority and priority in Priority.__members__ else []
    extra: dict[str, Any] = {"priority": tuple(priorities), "team_slug": form.queue or None,
                             "channel": form.channel or None, "query": (form.q or "").strip()[:200] or None,
                             "intent": (form.intent or "").strip()[:100] or None,
                             "tags": tag_service.filter_keys([form.tag]) if form.tag else ()}
    # Days as the supervisors' reports count them (kpi_time_zone): from its first moment to the end of the last.
    if (first := _local_day(form.created_from)) is not None:
        extra["created_after"] = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    if (last := _local_day(form.created_to)) is not None:
        extra["created_before"] = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    if assignee == "mine":
        extra["assignee_id"] = user.id
    elif assignee == "unassigned":
        extra["unassigned"] = True
    flt = ticket_service.inbox_filter(view, user, status=statuses, **extra)
    params = {k: v for k, v in {"view": view, **form.as_form(), "sort": sort if sort != "waiting" else None}.items()
              if v}
    return view, flt, params


async def _inbox_context(session: DbSession, state: State, user: User, view: str, form: InboxFields,
                         page: int, sort: str = "waiting", cursor: str | None = None) -> dict[str, Any]:
    sort = sort if sort in INBOX_SORTS else "waiting"
    view, flt, params = _inbox_filter_args(user, view, form, ZoneInfo(state.settings.core.kpi_time_zone), sort)
    searching = flt.query is not None
    # A list continues from its cursor (keyset); a search's ranked, bounded results page by number.
    found = await ticket_service.search(session, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE if searching
                                        else 0, sort=sort, cursor=None if searching else cursor)
    latest, reasons = await ticket_service.inbox_previews(session, [t.id for t in found.tickets])
    return {
        "row_tags": await tag_service.tags_of(session, [t.id for t in found.tickets]),
        "view": view, "tickets": found.tickets, "total": found.total, "total_is_capped": found.total_is_capped,
        "counts": await ticket_service.inbox_counts(session, user), "count_cap": COUNT_CAP,
        "matches": found.matches, "searching": searching, "latest": latest, "reasons": reasons,
        "reason_label": problems.reason_label, "bulk": user.role.rank >= Role.supervisor.rank,
        "next_cursor": found.next_cursor,
        "cursor": None if searching else cursor,
        "slas": await sla_service.sla_of_many(session, [t.id for t in found.tickets], state.clock.now()),
        "unread": await unread_service.unread_ids(session, user.id, found.tickets),
        "sort": sort, "params": params, "query_string": urlencode(params), "page": page,
        # The live refresh re-fetches the page being looked at, not the first one.
        "live_query": urlencode({**params, **({"cursor": cursor} if cursor and not searching else {}),
                                 **({"page": page} if searching and page > 1 else {})}),
        "pages": max(1, (found.total + PAGE_SIZE - 1) // PAGE_SIZE),
        "filters": {**form.as_form(), "sort": sort},
        "tag_keys": flt.tags,  # folded as the filter folds them: the tag options picked
    }


Cursor = Annotated[str | None, Query(max_length=200)]


Field = Annotated[str | None, Query(max_length=100)]


def inbox_fields(queue: Field = None, status: Field = None, priority: Field = None, channel: Field = None,
                 assignee: Field = None, q: Annotated[str | None, Query(max_length=200)] = None,
                 intent: Field = None, created_from: Annotated[str | None, Query(max_length=10)] = None,
                 created_to: Annotated[str | None, Query(max_length=10)] = None,
                 tag: Annotated[list[str] | None, Query()] = None) -> InboxFields:
    return InboxFields(queue, status, priority, channel, assignee, q, intent, created_from, created_to,
                       ",".join(tag)[:2000] or None if tag else None)


InboxForm = Annotated[InboxFields, Depends(inbox_fields)]


@router.get("/inbox")
async def inbox(request: Request, session: DbSession, state: State, user: ConsoleUser, form: InboxForm,
                view: str = "all", page: Annotated[int, Query(ge=1, le=10_000)] = 1, sort: str = "waiting",
                cursor: Cursor = None) -> Response:
    ctx = await _inbox_context(session, state, user, view, form, page, sort, cursor)
    ctx.update(teams=await users.list_teams(session), channels=await ticket_service.channels_in_use(session),
               statuses=list(TicketStatus), priorities=list(Priority), intents=await routing.known_intents(session),
               all_tags=await tag_service.list_tags(session, limit=TAG_SUGGESTIONS),
               assignable=await users.assignable_users(session) if user.role.rank >= Role.supervisor.rank else [])
    return render(request, "inbox.html", ctx)


@router.get("/inbox/rows")
async def inbox_rows(request: Request, session: DbSession, state: State, user: ConsoleUser, form: InboxForm,
                     view: str = "all", page: Annotated[int, Query(ge=1, le=10_000)] = 1, sort: str = "waiting",
                     cursor: Cursor = None) -> Response:
    """The live part of the inbox (view tabs with counts and the table), re-fetched on every change."""
    ctx = await _inbox_context(session, state, user, view, form, page, sort, cursor)
    return render(request, "_inbox_live.html", ctx)


# A customer wrote (a new ticket, a continued or a reopened one), or a ticket was given to someone.
# (A person taking a ticket is "assigned" too: pages count news only while hidden or unfocused, so one's own
# take is never counted.)
NEWS_KINDS = frozenset({"created", "continued", "reopened", "transferred"})
GIVEN_KINDS = frozenset({"assigned"})
WITH_PEOPLE = frozenset({TicketStatus.new.value, TicketStatus.open.value, TicketStatus.pending.value})


def notifies(payload: dict[str, Any], user: User) -> bool:
    """Whether a ticket event is news for this user's title count, sound and desktop notification: a customer
    wrote on a ticket they hold, or on one waiting unassigned in their queue (any queue for a user without one);
    or a ticket was just given to them. Tickets with the bot are not news."""
    kind, assignee = payload.get("kind"), payload.get("assignee_id")
    if kind in GIVEN_KINDS:
        return assignee == user.id
    if kind not in NEWS_KINDS or payload.get("status") not in WITH_PEOPLE:
        return False
    if assignee is not None:
        return bool(assignee == user.id)
    return user.team_id is None or payload.get("team_id") == user.team_id


@router.get("/events")
async def events(request: Request, state: State, ticket: str | None = None) -> Response:
    """Server-sent events: which ticket changed, so open pages re-fetch their live parts.

    A ticket page (`?ticket=<id>`) also hears who else is viewing or typing on that ticket (`event: presence`).
    """
    async with state.sessionmaker() as session:
        user = await user_from_cookie(session, request)
    if user is None:
        return Response(status_code=401)
    watched = parse_id(ticket) if ticket else None

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        topics = (*LIVE_TOPICS, Topic.PRESENCE) if watched is not None else LIVE_TOPICS
        if user.role.rank >= Role.supervisor.rank:
            topics = (*topics, Topic.PROBLEMS)
        async with state.bus.subscribe(*topics, RESYNC_TOPIC, BRIDGE_TOPIC) as queue:
            bridge = state.redis.state if state.redis is not None else "local"
            yield f"retry: 1500\nevent: hello\ndata: {json.dumps({'bridge': bridge})}\n\n"
            while (left := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(min(KEEPALIVE_SECONDS, left)):
                        topic, payload = await queue.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if topic == RESYNC_TOPIC:
                    # Changes may have been missed (the bridge was down): pages refresh everything they show.
                    yield f"event: resync\ndata: {json.dumps({'reason': payload.get('reason')})}\n\n"
                    continue
                if topic == BRIDGE_TOPIC:
                    yield f"event: bridge\ndata: {json.dumps({'state': payload.get('state')})}\n\n"
                    continue
                if topic == Topic.PROBLEMS:
                    # A rising-problem alert was raised or resolved: the board (and the problems page) refresh.
                    yield f"event: problem\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                    continue
                if topic == Topic.PRESENCE:
                    # Others on this ticket only: a page needs no news of its own user, nor of other tickets.
                    if payload.get("ticket_id") == watched and payload.get("user_id") != user.id:
                        yield f"event: presence\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                    continue
                data = {"topic": topic, "ticket_id": payload.get("ticket_id"), "kind": payload.get("kind")}
                yield f"event: change\ndata: {json.dumps(data)}\n\n"
                if topic == Topic.TICKETS and notifies(payload, user):
                    news = {k: payload.get(k) for k in ("ticket_id", "number", "kind")}
                    yield f"event: notify\ndata: {json.dumps(news)}\n\n"
                if payload.get("kind") == "taken_over" and payload.get("previous_assignee_id") == user.id:
                    # Only the previous holder hears it: someone took their ticket.
                    notice = {"ticket_id": payload.get("ticket_id"), "number": payload.get("number"),
                              "assignee_name": payload.get("assignee_name")}
                    yield f"event: takeover\ndata: {json.dumps(notice)}\n\n"
                if sla_service.alert_is_for(payload, user.id, user.role.rank >= Role.supervisor.rank, user.team_id):
                    # An SLA warning or breach: its assignee and the queue's supervisors see a notice.
                    alert = {k: payload.get(k) for k in ("ticket_id", "number", "level", "target", "due_at")}
                    yield f"event: sla\ndata: {json.dumps(alert)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# --- ticket --------------------------------------------------------------------------------------------


def presence_relay(state: State) -> PresenceRelay:
    """This instance's relay (made on first use): typing goes to the customer through the channel's adapter."""
    if state.presence is None:
        channels = state.channels

        async def send_typing(kind: str, recipient: str) -> None:
            adapter = channels.get(kind)
            signal = getattr(adapter, "send_typing", None)
            if signal is not None:
                async with asyncio.timeout(PRESENCE_SIGNAL_SECONDS):
                    await signal(recipient)

        state.presence = PresenceRelay(state.bus, state.clock, send_typing)
    return state.presence


@router.post("/tickets/{ref}/presence", dependencies=[CsrfChecked])
async def presence(ref: str, session: DbSession, state: State, user: ConsoleUser,
                   presence_state: Annotated[str, Form(alias="state")] = "",
                   what: Annotated[str, Form()] = "") -> Response:
    """The ticket page says it is open (`viewing`), its user is typing (`typing`, `what`: reply or note), or closed.

    Answers 204, or 422/404 with the reason as JSON (the page calls it in the background, never navigates).
    A beat reads one row, not the ticket; a channel's typing signal (Telegram: a network call, up to
    PRESENCE_SIGNAL_SECONDS) goes out after the answer, when this request's database session is closed.
    """
    try:
        announced, composer = presence_service.parse(presence_state, what)
        ticket_id = ticket_id_of(ref)
        line = None
        if composer == "reply":
            line = await presence_service.customer_line(session, ticket_id)
        else:
            await presence_service.ensure_ticket(session, ticket_id)
    except (NotFoundError, ValidationFailedError) as exc:
        return Response(json.dumps({"error": {"code": exc.code, "message": exc.message}}),
                        status_code=exc.status_code, media_type="application/json", headers=SECURITY_HEADERS)
    relay = presence_relay(state)
    typing = relay.announce(ticket_id, user, announced, composer, line)
    return Response(status_code=204, headers=SECURITY_HEADERS,
                    background=BackgroundTask(relay.signal, typing) if typing is not None else None)


async def _conversation_context(session: DbSession, ticket_id: int) -> dict[str, Any]:
    ticket, deliveries = await ticket_service.conversation(session, ticket_id)
    author_ids = {m.author_user_id for m in ticket.messages if m.author_user_id}
    author_ids |= {n.author_user_id for n in ticket.notes if n.author_user_id}
    return {"ticket": ticket, "deliveries": deliveries, "authors": await users.users_by_id(session, author_ids),
            "suggestions": await ticket_service.suggestions_for(session, [m.id for m in ticket.messages]),
            "customer_kind": AuthorKind.customer}


async def _whatsapp_window_closed(session: DbSession, ticket: Ticket, now: datetime) -> bool:
    """WhatsApp lets a business write freely only within 24 hours of the customer's last message; after that only
    approved templates are delivered (the send fails with error 131047)."""
    if ticket.channel != "whatsapp":
        return False
    last = (await latest_customer_message_at(session, [ticket.id])).get(ticket.id)
    if last is None:
        return False
    last = last if last.tzinfo is not None else last.replace(tzinfo=UTC)
    return now - last > timedelta(hours=24)


@router.get("/tickets/{ref}")
async def ticket_page(request: Request, ref: str, session: DbSession, state: State, user: ConsoleUser) -> Response:
    ctx = await _conversation_context(session, ticket_id_of(ref))
    ticket: Ticket = ctx["ticket"]
    await unread_service.mark_seen(session, user.id, ticket.id, state.clock.now())
    canned = await canned_service.list_for_ticket(session, ticket)
    panel = await customer_service.panel(session, ticket)
    ctx.update(
        panel=panel, canned=[(c, canned_service.render_for(c, ticket, user)) for c in canned],
        teams=await users.list_teams(session),
        assignable=await users.assignable_users(session) if user.role.rank >= Role.supervisor.rank else [],
        allowed_statuses=sorted(ticket_service.ALLOWED_TRANSITIONS[ticket.status]),
        # The current status first and selected: saving the form unchanged changes nothing.
        status_choices=[ticket.status, *sorted(ticket_service.ALLOWED_TRANSITIONS[ticket.status])],
        priorities=list(Priority), intents=await routing.known_intents(session),
        mergeable=[t for t in panel.previous if t.status in (*ticket_service.ACTIVE_STATUSES, TicketStatus.bot)],
        max_attachment_mb=round(state.settings.max_attachment_bytes / 1_048_576, 1),
        sla=await sla_service.sla_of(session, ticket.id, state.clock.now()),
        csat=await csat_service.answer_read(session, ticket.id),
        window_closed=await _whatsapp_window_closed(session, ticket, state.clock.now()),
        ticket_tags=await tag_service.tags_of_ticket(session, ticket.id),
        all_tags=await tag_service.list_tags(session, limit=TAG_SUGGESTIONS),
    )
    if ctx["window_closed"]:
        # Outside the window only approved templates reach the customer: the page offers them.
        templates = await template_service.usable(session, ticket.channel)
        ctx["wa_templates"] = templates
        ctx["wa_template_inputs"] = max((t.param_count for t in templates), default=0)
    # One read of the ticket's audit log for both its history and the SLA panel's warnings and breaches.
    entries = await audit.list_entries(session, entity_type="ticket", entity_id=str(ticket.id), limit=HISTORY_LIMIT)
    ctx["sla_events"] = [e for e in entries if e.action.startswith("sla.")]  # newest first, as the panel lists them
    ctx["history"], ctx["history_people"] = await _history(session, entries)
    ctx["history_assignment_actions"] = HISTORY_ASSIGNMENT_ACTIONS
    return render(request, "ticket.html", ctx)


async def _history(session: DbSession, newest_first: Sequence[AuditEntry]) -> tuple[list[AuditEntry], dict[int, User]]:
    """The ticket's audit entries (assignments, take-overs, returns, status changes, SLA warnings and breaches),
    oldest first, with the people they name."""
    entries = list(reversed(newest_first))
    ids = {e.actor_user_id for e in entries if e.actor_user_id}
    for e in entries:
        for key in ("old", "new"):
            value = (e.data or {}).get(key)
            if isinstance(value, int) and e.action in HISTORY_ASSIGNMENT_ACTIONS:
                ids.add(value)
    return entries, await users.users_by_id(session, ids)


HISTORY_LIMIT = 200  # the ticket page's history and SLA events: the latest entries of the ticket's audit log
HISTORY_ASSIGNMENT_ACTIONS = frozenset({"ticket.take", "ticket.take_over", "ticket.assign", "ticket.auto_assign",
                                        "ticket.return"})


@router.get("/tickets/{ref}/live")
async def ticket_live(request: Request, ref: str, session: DbSession, state: State, user: ConsoleUser) -> Response:
    ctx = await _conversation_context(session, ticket_id_of(ref))
    # The page shows the conversation as it is now: what the customer wrote so far is seen.
    await unread_service.mark_seen(session, user.id, ctx["ticket"].id, state.clock.now())
    ctx["intents"] = await routing.known_intents(session)
    return render(request, "_conversation.html", ctx)


async def _locked(session: DbSession, ref: str) -> Ticket:
    return await ticket_service.get(session, ticket_id_of(ref), lock=True)


NOBODY = "0"  # what a page's hidden `expected_assignee_id` says when it showed nobody holding the ticket


def expected_holder(value: str | None) -> ExpectedHolder:
    """The holder a page showed (its hidden `expected_assignee_id`: "0" for nobody; absent: not said).

    FastAPI reads an empty optional form field as absent, so "nobody" is "0" (an empty value counts as nobody too,
    should a client send it in a way that arrives). Anything else must be a user id: a malformed value is refused
    (422), never read as "nobody".
    """
    if value is None:
        return Holder.ANY
    text = value.strip()
    if text in ("", NOBODY):
        return None
    holder = parse_id(text)
    if holder is None:
        raise ValidationFailedError(f"expected_assignee_id must be a user id or 0 for nobody, not {value[:40]!r}")
    return holder


def refused(request: Request, exc: ValidationFailedError) -> Response:
    """A 422 page with the reason, for values no console page sends (a malformed hidden field): going back to the
    page with a flash, as for a user's typing mistake, would hide that the request itself was wrong."""
    return render(request, "error.html", {"title": exc.code, "message": exc.message, "status": exc.status_code},
                  status_code=exc.status_code)


@router.post("/tickets/{ref}/take", dependencies=[CsrfChecked])
async def take(request: Request, ref: str, session: DbSession, user: ConsoleUser,
               expected_assignee_id: Annotated[str | None, Form()] = None,
               take_over: Annotated[str, Form()] = "") -> Response:
    try:
        expected = expected_holder(expected_assignee_id)
    except ValidationFailedError as exc:
        return refused(request, exc)
    ticket = await _locked(session, ref)
    _ = translator(user.language)
    try:
        await ticket_service.take(session, ticket, user, expected_assignee_id=expected, take_over=take_over == "1")
    except TicketHeldError as exc:
        # Someone holds it (maybe since this page was drawn): ask, naming them; confirming takes it over.
        return render(request, "collision.html", {
            "mode": "take", "ticket": ticket, "holder_id": exc.holder_id,
            "question": _("collision.take_question", name=exc.holder_name)}, status_code=409)
    return redirect(ticket_url(ticket), _("ticket.taken", number=ticket.number))


@router.post("/tickets/{ref}/assign", dependencies=[CsrfChecked])
async def assign(request: Request, ref: str, session: DbSession, user: ConsoleUser,
                 user_id: Annotated[str, Form()] = "",
                 expected_assignee_id: Annotated[str | None, Form()] = None) -> Response:
    try:
        expected = expected_holder(expected_assignee_id)
    except ValidationFailedError as exc:
        return refused(request, exc)
    ticket = await _locked(session, ref)
    assignee_id = parse_id(user_id)
    assignee = await users.get(session, assignee_id) if assignee_id is not None else None
    _ = translator(user.language)
    try:
        await ticket_service.assign(session, ticket, assignee, user,
                                    expected_assignee_id=expected)
    except TicketHeldError as exc:
        return redirect(ticket_url(ticket), _("collision.held_now", name=exc.holder_name), "error")
    return redirect(ticket_url(ticket), _("ticket.updated"))


@router.post("/tickets/{ref}/transfer", dependencies=[CsrfChecked])
async def transfer(ref: str, session: DbSession, user: ConsoleUser, queue: Annotated[str, Form()] = "") -> Response:
    ticket = await _locked(session, ref)
    await ticket_service.transfer(session, ticket, await ticket_service.team_by_slug(session, queue), user)
    return redirect(ticket_url(ticket), translator(user.language)("ticket.updated"))


@router.post("/tickets/{ref}/status", dependencies=[CsrfChecked])
async def change_status(ref: str, session: DbSession, user: ConsoleUser,
                        status: Annotated[str, Form()] = "") -> Response:
    if status not in TicketStatus.__members__:
        raise ValidationFailedError(f"unknown status {status!r}")
    ticket = await _locked(session, ref)
    await ticket_service.change_status(session, ticket, TicketStatus(status), user)
    return redirect(ticket_url(ticket), translator(user.language)("ticket.updated"))


@router.post("/tickets/{ref}/priority", dependencies=[CsrfChecked])
async def change_priority(ref: str, session: DbSession, user: ConsoleUser,
                          priority: Annotated[str, Form()] = "") -> Response:
    if priority not in Priority.__members__:
        raise ValidationFailedError(f"unknown priority {priority!r}")
    ticket = await _locked(session, ref)
    await ticket_service.change_priority(session, ticket, Priority(priority), user)
    return redirect(ticket_url(ticket), translator(user.language)("ticket.updated"))


@router.post("/tickets/{ref}/reply", dependencies=[CsrfChecked])
async def reply(ref: str, request: Request, session: DbSession, state: State, user: ConsoleUser,
                text: Annotated[str, Form()] = "", canned_id: Annotated[str, Form()] = "",
                status: Annotated[str, Form()] = "",
                confirm_not_assignee: Annotated[str, Form()] = "") -> Response:
    _ = translator(user.language)
    ticket = await _locked(session, ref)
    if not text.strip() and (canned := parse_id(canned_id)) is not None:
        text = canned_service.render_for(await canned_service.get(session, canned), ticket, user)
    if not text.strip():
        return redirect(ticket_url(ticket), _("ticket.empty_reply"), "error")
    if len(text) > 100_000:
        raise ValidationFailedError("the reply is longer than 100,000 characters")
    new_status = TicketStatus(status) if status in TicketStatus.__members__ else None
    try:
        if confirm_not_assignee != "1":  # before the uploads are stored: a refused reply leaves no files behind
            ticket_service.ensure_holder(ticket, user)
        attachments = await _store_uploads(request, state)
        await ticket_service.reply(session, ticket, user, text, attachments=attachments,
                                   files=state.files, status=new_status)
    except NotAssigneeError as exc:
        # Someone else holds the ticket: the reply waits on a page that says so; files are chosen again there.
        return render(request, "collision.html", {
            "mode": "reply", "ticket": ticket, "holder_id": exc.holder_id, "text": text,
            "status": new_status.value if new_status else "", "had_files": _has_uploads(await request.form()),
            "question": _("collision.reply_question", name=exc.holder_name)}, status_code=409)
    return redirect(ticket_url(ticket), _("ticket.replied"))


@router.post("/tickets/{ref}/template-reply", dependencies=[CsrfChecked])
async def template_reply(ref: str, request: Request, session: DbSession, user: ConsoleUser,
                         template: Annotated[str, Form(max_length=600)] = "") -> Response:
    """A reply as an approved WhatsApp template (`template`: "name|language"); the form's `params` fill {{1}}..
    in order, the inputs past the template's count left empty."""
    _ = translator(user.language)
    ticket = await _locked(session, ref)
    name, _sep, language = template.partition("|")
    chosen = await template_repository.get(session, ticket.channel, name, language)
    if chosen is None:
        return redirect(ticket_url(ticket), _("whatsapp.template_unknown"), "error")
    given = [str(p) for p in (await request.form()).getlist("params")]
    if any(p.strip() for p in given[chosen.param_count:]):
        return redirect(ticket_url(ticket), _("whatsapp.template_params", count=chosen.param_count), "error")
    params = [p.strip() for p in given[:chosen.param_count]]
    try:
        await template_service.reply(session, ticket, user, name, language, params)
    except (ValidationFailedError, ConflictError) as exc:
        return redirect(ticket_url(ticket), _("whatsapp.template_refused", reason=str(exc)), "error")
    return redirect(ticket_url(ticket), _("ticket.replied"))


@router.post("/whatsapp/templates/refresh", dependencies=[CsrfChecked])
async def refresh_templates(session: DbSession, state: State, user: ConsoleUser,
                            next: Annotated[str, Form()] = "/console") -> Response:
    """Read WhatsApp's approved templates now (one was just approved)."""
    _ = translator(user.language)
    adapter = state.channels.get("whatsapp")
    refresh = getattr(adapter, "refresh_templates", None)
    if refresh is None:
        return redirect(safe_next(next), _("whatsapp.templates_off"), "error")
    try:
        count = await refresh(session)
    except Exception as exc:
        log.warning("whatsapp templates refresh failed", extra={"error": str(exc)[:200]})
        return redirect(safe_next(next), _("whatsapp.templates_failed", reason=str(exc)[:200]), "error")
    return redirect(safe_next(next), _("whatsapp.templates_refreshed", count=count))


def _has_uploads(form: Any) -> bool:
    return any(isinstance(f, UploadFile) and f.filename for f in form.getlist("files"))


async def _store_uploads(request: Request, state: State) -> list[AttachmentRef]:
    """The files of the reply form, saved through the attachment store (413/415 come back as a flash)."""
    # An empty <input type=file> still sends a part with no name; only real files count.
    files = [f for f in (await request.form()).getlist("files") if isinstance(f, UploadFile) and f.filename]
    if len(files) > MAX_REPLY_FILES:
        raise ValidationFailedError(f"at most {MAX_REPLY_FILES} files per reply")
    limit = state.settings.max_attachment_bytes
    refs = []
    for upload in files:
        data = await upload.read(limit + 1)
        info = await attachment_service.save_upload(state.files, upload.filename or "", upload.content_type, data,
                                                    max_bytes=limit)
        refs.append(AttachmentRef.model_validate(info.model_dump(exclude={"url"})))
    return refs


@router.get("/attachments/{storage_key:path}")
async def attachment(storage_key: str, state: State, _user: ConsoleUser,
                     range: Annotated[str | None, Header()] = None,
                     if_range: Annotated[str | None, Header()] = None) -> Response:
    """Inbound and outbound files for signed-in console users (the API's route wants a bearer token)."""
    return await download_response(state.files, storage_key, range, if_range)


@router.post("/tickets/{ref}/note", dependencies=[CsrfChecked])
async def note(ref: str, session: DbSession, user: ConsoleUser, text: Annotated[str, Form()] = "") -> Response:
    ticket = await ticket_service.get(session, ticket_id_of(ref))
    if len(text) > 50_000:
        raise ValidationFailedError("the note is longer than 50,000 characters")
    await ticket_service.add_note(session, ticket, user, text)
    return redirect(ticket_url(ticket), translator(user.language)("ticket.noted"))


@router.post("/tickets/{ref}/merge", dependencies=[CsrfChecked])
async def merge(ref: str, session: DbSession, user: ConsoleUser, source: Annotated[str, Form()] = "") -> Response:
    target = await _locked(session, ref)
    other = await ticket_service.get(session, ticket_id_of(source.strip()), lock=True)
    await ticket_service.merge(session, other, target, user)
    return redirect(ticket_url(target), translator(user.language)("ticket.merged"))


@router.post("/tickets/{ref}/retry/{outbox_id}", dependencies=[CsrfChecked])
async def retry(ref: str, outbox_id: IdPath, session: DbSession, user: ConsoleUser) -> Response:
    ticket_id = ticket_id_of(ref)
    await outbox_service.retry(session, outbox_id, user, ticket_id=ticket_id)
    return redirect(ticket_url(ticket_id), translator(user.language)("ticket.retried"))


@router.post("/tickets/{ref}/messages/{message_id}/intent", dependencies=[CsrfChecked])
async def correct_intent(ref: str, message_id: IdPath, session: DbSession, user: ConsoleUser,
                         intent: Annotated[str, Form()] = "") -> Response:
    """The agent's correction becomes a suggested training example for the admins (Admin → Intents)."""
    ticket_id = ticket_id_of(ref)
    await ticket_service.message_on_ticket(session, ticket_id, message_id)
    intent = intent.strip()
    if not nlu_admin.INTENT_NAME.match(intent):
        raise ValidationFailedError(translator(user.language)("intents.bad_name", name=intent))
    await nlu_admin.suggest(session, message_id, intent, user)
    return redirect(ticket_url(ticket_id), translator(user.language)("ticket.corrected"))


# --- supervisor ----------------------------------------------------------------------------------------


@router.get("/board")
async def board(request: Request, session: DbSession, state: State, _user: ConsoleSupervisor) -> Response:
    data = await reports.board(session, now=state.clock.now(), offline_after=state.settings.core.presence_offline)
    return render(request, "board.html", {"board": data, "assignable": await users.assignable_users(session),
                                          "alerts": await problems.active_alerts(session)})


@router.post("/board/reassign", dependencies=[CsrfChecked])
async def reassign(request: Request, session: DbSession, user: ConsoleSupervisor,
                   ticket_id: Annotated[int, Form(ge=1, le=MAX_ID)], user_id: Annotated[str, Form()] = "",
                   expected_assignee_id: Annotated[str | None, Form()] = None) -> Response:
    try:
        expected = expected_holder(expected_assignee_id)
    except ValidationFailedError as exc:
        return refused(request, exc)
    ticket = await ticket_service.get(session, ticket_id, lock=True)
    assignee_id = parse_id(user_id)
    assignee = await users.get(session, assignee_id) if assignee_id is not None else None
    _ = translator(user.language)
    try:
        await ticket_service.assign(session, ticket, assignee, user,
                                    expected_assignee_id=expected)
    except TicketHeldError as exc:
        # The board showed another holder (or nobody): ask, naming who holds it now; confirming reassigns.
        return render(request, "collision.html", {
            "mode": "reassign", "ticket": ticket, "holder_id": exc.holder_id, "user_id": user_id,
            "question": _("collision.reassign_question", name=exc.holder_name,
                          target=assignee.name if assignee else _("unassigned"))}, status_code=409)
    return redirect("/console/board", _("board.reassigned"))


# --- admin ---------------------------------------------------------------------------------------------


@router.get("/admin")
async def admin_home(_user: ConsoleAdmin) -> Response:
    return redirect("/console/admin/users")


@router.get("/admin/users")
async def admin_users(request: Request, session: DbSession, state: State, _user: ConsoleAdmin) -> Response:
    return render(request, "admin_users.html", {
        "section": "users", "users": await users.list_users(session), "teams": await users.list_teams(session),
        "roles": list(Role), "restrictions": await login_guard.restricted_accounts(session, state.clock.now())})


@router.post("/admin/users/{user_id}/unlock", dependencies=[CsrfChecked])
async def admin_unlock_user(user_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    user = await users.get(session, user_id)
    await login_guard.unlock(session, user, actor)
    return redirect("/console/admin/users", translator(actor.language)("user.unlocked", email=user.email))


@router.post("/admin/users", dependencies=[CsrfChecked])
async def admin_create_user(session: DbSession, actor: ConsoleAdmin, email: Annotated[str, Form()] = "",
                            name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                            role: Annotated[str, Form()] = "agent", language: Annotated[str, Form()] = "en",
                            queue: Annotated[str, Form()] = "", capacity: Annotated[str, Form()] = "10",
                            display_name: Annotated[str, Form()] = "",
                            languages: Annotated[str, Form()] = "") -> Response:
    body: UserCreate = validated(UserCreate, email=email, name=name, display_name=display_name or None,
                                 password=password, role=role,
                                 language=language, queue=queue or None,
                                 capacity=_form_count(capacity, default=10), languages=_languages(languages))
    await users.create_user(session, body, actor)
    return redirect("/console/admin/users", translator(actor.language)("saved"))


@router.post("/admin/users/{user_id}", dependencies=[CsrfChecked])
async def admin_update_user(user_id: IdPath, session: DbSession, actor: ConsoleAdmin,
                            name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "agent",
                            language: Annotated[str, Form()] = "en", queue: Annotated[str, Form()] = "",
                            capacity: Annotated[str, Form()] = "10", is_active: Annotated[str, Form()] = "",
                            password: Annotated[str, Form()] = "",
                            display_name: Annotated[str, Form()] = "",
                            languages: Annotated[str, Form()] = "") -> Response:
    user = await users.get(session, user_id)
    # The form sends every field: an empty queue takes the user out of their queue, an empty password keeps it,
    # an empty display name clears it, empty languages lift the restriction.
    body: UserUpdate = validated(UserUpdate, name=name, display_name=display_name, role=role, language=language,
                                 queue=queue,
                                 capacity=_form_count(capacity, default=10), is_active=is_active == "on",
                                 password=password or None, languages=_languages(languages))
    await users.update(session, user, body, actor)
    return redirect("/console/admin/users", translator(actor.language)("saved"))


@router.get("/admin/queues")
async def admin_queues(request: Request, session: DbSession, state: State, _user: ConsoleAdmin) -> Response:
    teams = list(await users.list_teams(session))
    warnings = await assignment.queue_warnings(session, teams, state.clock.now(), state.settings.core.presence_offline)
    return render(request, "admin_queues.html", {"section": "queues", "teams": teams, "warnings": warnings,
                                                 "modes": list(AssignmentMode),
                                                 "calendars": await calendar_service.list_all(session)})



@router.post("/admin/queues/{slug}", dependencies=[CsrfChecked])
async def admin_update_queue(slug: str, session: DbSession, state: State, actor: ConsoleAdmin,
                             name: Annotated[str, Form()] = "", assignment_mode: Annotated[str, Form()] = "",
                             return_after_minutes: Annotated[str, Form()] = "",
                             calendar_id: Annotated[str, Form()] = "",
                             default_wait_minutes: Annotated[str, Form()] = "",
                             bot_answers_while_waiting: Annotated[str, Form()] = "",
                             csat_enabled: Annotated[str, Form()] = "",
                             csat_delay_minutes: Annotated[str, Form()] = "") -> Response:
    """A queue's one settings form: the same update and rules as PATCH /admin/queues/{slug} (core.queues), its
    refusals (an unknown calendar, a number out of range) flashed with the reason, its warnings shown after saving.

    The form shows every field, so an unticked box is off, an empty calendar is "always open"; a number left empty
    keeps the queue's value.
    """
    team = await users.team_by_slug(session, slug)
    body: QueueSettingsUpdate = validated(
        QueueSettingsUpdate, name=name or None, assignment_mode=assignment_mode or None,
        return_after_minutes=_form_count(return_after_minutes, default=team.return_after_minutes),
        calendar_id=_form_count(calendar_id, default=0) or None,
        default_wait_minutes=_form_count(default_wait_minutes, default=team.default_wait_minutes),
        bot_answers_while_waiting=bot_answers_while_waiting == "on",
        csat_enabled=csat_enabled == "on",
        csat_delay_minutes=_form_count(csat_delay_minutes, default=team.csat_delay_minutes))
    saved = await queues.update(session, team, body, actor, state.clock.now(), state.settings.core.presence_offline)
    _ = translator(actor.language)
    if saved.warnings:
        text = " ".join([_("saved"), *(_("queue.warning." + w.value, queue=saved.name) for w in saved.warnings)])
        return redirect("/console/admin/queues", text, "error")
    return redirect("/console/admin/queues", _("saved"))


@router.post("/admin/queues", dependencies=[CsrfChecked])
async def admin_create_queue(session: DbSession, actor: ConsoleAdmin, slug: Annotated[str, Form()] = "",
                             name: Annotated[str, Form()] = "") -> Response:
    body: TeamCreate = validated(TeamCreate, slug=slug.strip(), name=name.strip())
    await users.create_team(session, body.slug, body.name, actor)
    return redirect("/console/admin/queues", translator(actor.language)("saved"))


@router.get("/admin/canned")
async def admin_canned(request: Request, session: DbSession, _user: ConsoleAdmin,
                       edit: int | None = None) -> Response:
    items = await canned_service.list_all(session)
    editing = next((c for c in items if c.id == edit), None)
    return render(request, "admin_canned.html", {
        "section": "canned", "items": items, "teams": await users.list_teams(session), "editing": editing,
        "variables_text": ", ".join("{{" + v + "}}" for v in canned_service.VARIABLES)})


def _canned_form(title: str, body: str, shortcut: str, language: str, queue: str) -> dict[str, Any]:
    return {"title": title, "body": body, "shortcut": shortcut.strip() or None, "language": language or None,
            "queue": queue or None}


@router.post("/admin/canned", dependencies=[CsrfChecked])
async def admin_create_canned(session: DbSession, actor: ConsoleAdmin, title: Annotated[str, Form()] = "",
                              body: Annotated[str, Form()] = "", shortcut: Annotated[str, Form()] = "",
                              language: Annotated[str, Form()] = "", queue: Annotated[str, Form()] = "") -> Response:
    data = validated(CannedResponseCreate, **_canned_form(title, body, shortcut, language, queue))
    await canned_service.create(session, data, actor)
    return redirect("/console/admin/canned", translator(actor.language)("saved"))


@router.post("/admin/canned/{canned_id}", dependencies=[CsrfChecked])
async def admin_update_canned(canned_id: IdPath, session: DbSession, actor: ConsoleAdmin,
                              title: Annotated[str, Form()] = "", body: Annotated[str, Form()] = "",
                              shortcut: Annotated[str, Form()] = "", language: Annotated[str, Form()] = "",
                              queue: Annotated[str, Form()] = "") -> Response:
    data = validated(CannedResponseUpdate, **_canned_form(title, body, shortcut, language, queue))
    await canned_service.update(session, canned_id, data, actor)
    return redirect("/console/admin/canned", translator(actor.language)("saved"))


@router.post("/admin/canned/{canned_id}/delete", dependencies=[CsrfChecked])
async def admin_delete_canned(canned_id: IdPath, session: DbSession, actor: ConsoleAdmin) -> Response:
    await canned_service.delete(session, canned_id, actor)
    return redirect("/console/admin/canned", translator(actor.language)("canned.deleted"))


@router.get("/admin/routing")
async def admin_routing(request: Request, session: DbSession, _user: ConsoleAdmin) -> Response:
    return render(request, "admin_routing.html", {
        "section": "routing", "routes": sorted((await routing.list_routes(session)).items()),
        "teams": await users.list_teams(session),
        # A rule is for an intent that exists (the trained ones and the routed ones), chosen from the list.
        "intent_names": await routing.known_intents(session)})


@router.post("/admin/routing", dependencies=[CsrfChecked])
async def admin_set_route(session: DbSession, actor: ConsoleAdmin, intent: Annotated[str, Form()] = "",
                          queue: Annotated[str, Form()] = "") -> Response:
    await routing.route_to_queue(session, intent.strip(), queue, actor)
    return redirect("/console/admin/routing", translator(actor.language)("saved"))


@router.get("/admin/channels")
async def admin_channels(request: Request, session: DbSession, state: State, _user: ConsoleAdmin,
                         channel: str | None = None) -> Response:
    env = state.settings.channels
    configs = (channel_setup.list_reads(await channel_configs.list_all(session), state.secret_box, env)
               if state.secret_box is not None else [])
    health = {a.kind: a.health.as_dict() for a in state.channels}
    return render(request, "admin_channels.html", {
        "section": "channels", "channels": list(health.items()), "health": health, "configs": configs,
        "environment": channel_setup.env_summary(env), "kinds": list(KINDS),
        "notes": state.channel_setup.notes if state.channel_setup else {},
        "can_set_up": state.channel_setup is not None,
        "stats": state.dispatcher.stats, "workers_enabled": state.settings.workers_enabled,
        "quarantine": await quarantine.list_payloads(session, channel or None, 100, 0),
        "channel": channel or ""})


@router.get("/admin/audit")
async def admin_audit(request: Request, session: DbSession, _user: ConsoleAdmin,
                      entity_type: str | None = None, actor: str | None = None,
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    actor_id = parse_id(actor) if actor else None
    rows = await audit.list_entries(session, entity_type=entity_type or None, actor_user_id=actor_id,
                                         limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    people = await users.list_users(session)
    params = {k: v for k, v in {"entity_type": entity_type, "actor": actor}.items() if v}
    return render(request, "admin_audit.html", {
        "section": "audit", "entries": rows[:PAGE_SIZE], "has_more": len(rows) > PAGE_SIZE, "page": page,
        "people": {u.id: u for u in people}, "people_list": people, "params": params,
        "query_string": urlencode(params), "entity_type": entity_type or "", "actor": actor or "",
        "entity_types": ["ticket", "user", "team", "intent", "example", "nlu_job", "nlu_version", "nlu",
                         "suggestion", "outbox", "canned_response", "customer", "order", "message", "tag",
                         "channel_config"]})
