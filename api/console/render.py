"""Jinja2 rendering for the console: autoescape on, per-user language, CSRF token and flash in every page."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from api.console import charts
from api.console.security import CSRF_FIELD, Viewer, expected_csrf, pop_flash
from api.state import AppState
from core.db.base import utcnow
from core.i18n import LANGUAGES, Translator, normalise, preferred_language, translator
from core.users.models import Role

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

# Scripts only from our own origin (no inline script can run even if escaping failed somewhere), and frames
# (the sandboxed email view) get no scripts either.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

# Jinja2's i18n extension: templates say `_("key", name=...)` and `ngettext("key", n)`; `_` resolves the context's
# `gettext`, and each render puts the reader's language's callables there (Jinja's way for per-request languages).
# Keys, not English sentences, are the message ids, so `{% trans %}` blocks are not used.
env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    extensions=["jinja2.ext.i18n"],
    autoescape=select_autoescape(["html", "svg"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(hbars=charts.hbars, columns=charts.columns, progress=charts.progress, Bar=charts.Bar,
                   meter=charts.meter, scores=charts.scores,
                   Role=Role, LANGUAGES=LANGUAGES, CSRF_FIELD=CSRF_FIELD)


def waited(since: datetime | None, _: Translator, now: datetime | None = None) -> str:
    """A short human duration since `since` ("5 min", "2 h 10 min")."""
    if since is None:
        return "—"
    seconds = int(((now or utcnow()) - since).total_seconds())
    if seconds < 60:
        return _("time.now")
    minutes = seconds // 60
    if minutes < 60:
        return _("time.min", n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("time.hour", h=hours, m=minutes)
    days, hours = divmod(hours, 24)
    return _("time.day", d=days, h=hours)


def remaining(due: datetime | None, _: Translator, now: datetime | None = None) -> str:
    """What is left until an SLA due time ("25 min"), or how far past it ("−5 min")."""
    if due is None:
        return "—"
    seconds = int((due - (now or utcnow())).total_seconds())
    text = waited(due - timedelta(seconds=abs(seconds)), _, due) if abs(seconds) >= 60 else _("time.min", n=0)
    return f"−{text}" if seconds < 0 else text


def human_dt(value: datetime | None, _: Translator, zone: ZoneInfo, now: datetime) -> str:
    """A date as people say it, in the console's time zone: "today 14:05", "yesterday 09:10", "28 Nov 14:05",
    "3 Mar 2025" (another year), month names in the reader's language."""
    if value is None:
        return "—"
    local, today = value.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return _("date.today", time=clock)
    if local.date() == today - timedelta(days=1):
        return _("date.yesterday", time=clock)
    if local.year == today.year:
        return format_datetime(local, "d MMM HH:mm", locale=_.language)
    return format_date(local.date(), "d MMM y", locale=_.language)


def fmt_dt(value: datetime | None) -> str:
    """The exact time in UTC (for a tooltip or an export)."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@pass_context
def dt_filter(context: Context, value: datetime | str | None) -> str:
    """`{{ when | dt }}`: a date as people say it (human_dt) in the reader's language and the console's zone; an
    ISO 8601 text (a channel's health, as /health gives it) is read first."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    human: Any = context["human"]
    return str(human(value))


env.filters["dt"] = dt_filter
env.filters["utc"] = fmt_dt


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200,
           user: Viewer | None = None) -> HTMLResponse:
    state: AppState = request.app.state.switchboard
    user = user or getattr(request.state, "console_viewer", None)
    # Signed out (the login page, an error page): the language last used here, else the browser's.
    lang = normalise(user.language if user else request.cookies.get("sb_lang")
                     or preferred_language(request.headers.get("accept-language")))
    _ = translator(lang)
    zone = ZoneInfo(state.settings.core.kpi_time_zone)
    response = HTMLResponse("", status_code=status_code, headers=SECURITY_HEADERS)
    flash = pop_flash(request, response)
    ctx = {
        "request": request, "user": user, "lang": lang, "gettext": _, "ngettext": _.ngettext,
        "csrf": expected_csrf(request, state) or "",
        "flash": flash, "waited": lambda since: waited(since, _),
        # The app's clock, as the SLA states beside the countdown are computed with (tests drive it).
        "remaining": lambda due: remaining(due, _, state.clock.now()), "path": request.url.path,
        "human": lambda value: human_dt(value, _, zone, state.clock.now()),
        # The page itself (path and query): the language switch comes back to it.
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    ctx.update(context)
    response.body = response.render(env.get_template(template).render(ctx))
    response.headers["content-length"] = str(len(response.body))
    return response
