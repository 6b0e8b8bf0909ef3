"""The weekly summary's rules: the switch, who receives it, which week it covers, what it says.

Figures come from the KPI engine (`core.kpis.service.report`, totals over the week), so the mail says exactly what
the reports page shows for the same dates. Nothing here commits; the due task's firing transaction (or the
request's) does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.i18n import Translator, normalise, translator
from core.i18n import formats as fmt
from core.summaries import repository
from core.summaries.models import SETTINGS_ROW, SummaryMail, SummarySettingsRow
from core.summaries.schemas import MailRow, Recipient, StaffMail, SummaryOverview
from core.summaries.settings import SummarySettings
from core.users.models import User

SUMMARY_TASK = "summary.weekly"
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                         autoescape=select_autoescape(["html"], default_for_string=False, default=False),
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# --- the switch and the people -----------------------------------------------------------------------------------


async def is_enabled(session: AsyncSession) -> bool:
    row = await repository.settings_row(session)
    return row is not None and row.enabled


async def set_enabled(session: AsyncSession, enabled: bool, actor: User, now: datetime) -> bool:
    """Turn the weekly summary on or off (audited when it changes); returns whether it changed."""
    row = await repository.settings_row(session, lock=True)
    if row is None:
        row = SummarySettingsRow(id=SETTINGS_ROW, enabled=False)
        session.add(row)
    if row.enabled == enabled:
        return False
    row.enabled, row.updated_at, row.updated_by_id = enabled, now, actor.id
    audit.record(session, actor, "summary.enabled" if enabled else "summary.disabled", "summary", SETTINGS_ROW)
    await session.flush()
    return True


async def recipients(session: AsyncSession) -> list[Recipient]:
    """Who gets the summary: every active supervisor and admin (their sign-in e-mail, their language)."""
    return [Recipient(u.id, u.name, u.email, normalise(u.language), u.role.value)
            for u in await repository.recipients(session) if u.email]


async def overview(session: AsyncSession, settings: SummarySettings, sender: str | None, now: datetime,
                   *, mails: int = 30) -> SummaryOverview:
    row = await repository.settings_row(session)
    return SummaryOverview(
        enabled=row is not None and row.enabled, updated_at=row.updated_at if row else None,
        recipients=await recipients(session), next_run=next_run(settings, now), sender=sender,
        mails=[MailRow(m.id, m.week_start, m.address, m.language, m.status, m.attempts, m.last_error, m.created_at,
                       m.sent_at) for m in await repository.recent_mails(session, mails)])


# --- when, and which week ------------------------------------------------------------------------------------------


def next_run(settings: SummarySettings, now: datetime) -> datetime:
    """The first send time strictly after `now` (weekday and time of day in the summary's time zone; a time a DST
    change skips lands just after the gap)."""
    zone = ZoneInfo(settings.zone)
    local = now.astimezone(zone)
    day = local.date() + timedelta(days=(settings.weekday_index - local.weekday()) % 7)
    candidate = datetime.combine(day, settings.send_time, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(day + timedelta(days=7), settings.send_time, tzinfo=zone)
    return candidate.astimezone(now.tzinfo)


def task_key(due: datetime, settings: SummarySettings) -> str:
    """The week's task is named by its local send date: two instances arming it make one task."""
    return f"send:{due.astimezone(ZoneInfo(settings.zone)).date().isoformat()}"


def week_reported(due: datetime, settings: SummarySettings) -> date:
    """The Monday of the last whole week (Monday-Sunday, local) before the send time."""
    local = due.astimezone(ZoneInfo(settings.zone)).date()
    return local - timedelta(days=local.weekday() + 7)


# --- what it says ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """A KPI of the summary: its field in the KPI row, how it is worded, and whether lower is better."""

    field: str
    kind: str  # count | duration | rate | score
    lower_is_better: bool = False


FIGURES: tuple[Figure, ...] = (
    Figure("tickets", "count"),
    Figure("resolved", "count"),
    Figure("first_response_median_s", "duration", lower_is_better=True),
    Figure("resolution_median_s", "duration", lower_is_better=True),
    Figure("containment_rate", "rate"),
    Figure("fcr_rate", "rate"),
    Figure("sla_first_response_met_rate", "rate"),
    Figure("sla_resolution_met_rate", "rate"),
    Figure("csat_avg", "score"),
    Figure("complaint_rate", "rate", lower_is_better=True),
    Figure("reopen_rate", "rate", lower_is_better=True),
    Figure("backlog", "count", lower_is_better=True),
)


@dataclass(frozen=True, slots=True)
class Line:
    """One row of the mail: the label, this week, the week before, the change and whether it is good news."""

    label: str
    current: str
    previous: str
    change: str
    tone: str  # good | bad | same | none


def word(figure: Figure, value: float | None, _: Translator) -> str:
    if figure.kind == "count":
        return fmt.number(value, _.language)
    if figure.kind == "duration":
        return fmt.duration(value, _)
    if figure.kind == "rate":
        return fmt.percent(value, _.language)
    return fmt.fixed(value, _.language, digits=2)


def _change(figure: Figure, current: float | None, previous: float | None, _: Translator) -> tuple[str, str]:
    if current is None or previous is None:
        return fmt.DASH, "none"
    if figure.kind in ("rate", "score"):
        delta = current - previous
        text = (_("summary.points", value=fmt.signed_points(delta, _.language)) if figure.kind == "rate"
                else ("+" if delta > 0 else "−" if delta < 0 else "±") + fmt.fixed(abs(delta), _.language, digits=2))
    else:
        rel = fmt.change(current, previous)
        delta = current - previous
        text = fmt.signed_percent(rel, _.language) if rel is not None else fmt.DASH
    if abs(delta) < 1e-9:
        return text, "same"
    better = (delta < 0) == figure.lower_is_better
    return text, "good" if better else "bad"


def lines(current: Any, previous: Any, _: Translator) -> list[Line]:
    """The mail's table: every figure this week and the week before (KPI rows with the issue's field names)."""
    out = []
    for figure in FIGURES:
        now_value, before = getattr(current, figure.field), getattr(previous, figure.field)
        change, tone = _change(figure, now_value, before, _)
        label = _("reports.kpi." + figure.field)
        if figure.field == "csat_avg":
            label = _("summary.csat_with_count", label=label, count=_.ngettext("summary.answers",
                                                                               current.csat_responses))
        out.append(Line(label, word(figure, now_value, _), word(figure, before, _), change, tone))
    return out


def reports_link(settings: SummarySettings, week_start: date) -> str:
    query = urlencode({"from": week_start.isoformat(), "to": (week_start + timedelta(days=6)).isoformat(),
                       "group_by": "day"})
    return f"{settings.console_url.rstrip('/')}/console/reports?{query}"


def period_text(start: date, end: date, _: Translator) -> str:
    """`23.11–29.11.2026` (ru) / `2026-11-23 – 2026-11-29` (en)."""
    return _("summary.period", start=_("summary.date", d=f"{start.day:02d}", m=f"{start.month:02d}", y=start.year),
             end=_("summary.date", d=f"{end.day:02d}", m=f"{end.month:02d}", y=end.year))


def compose(recipient: Recipient, week_start: date, current: Any, previous: Any, settings: SummarySettings,
            message_id_domain: str) -> StaffMail:
    """One recipient's mail in their language: subject, plain text and HTML with the same table and link."""
    _ = translator(recipient.language)
    week_end = week_start + timedelta(days=6)
    period = period_text(week_start, week_end, _)
    before = period_text(week_start - timedelta(days=7), week_start - timedelta(days=1), _)
    subject = _("summary.subject", period=period, tickets=_.ngettext("summary.tickets", int(current.tickets or 0)))
    context = {"_": _, "name": recipient.name, "period": period, "before": before,
               "lines": lines(current, previous, _), "link": reports_link(settings, week_start),
               "empty": not current.tickets and not previous.tickets, "lang": recipient.language}
    text = _TEMPLATES.get_template("weekly.txt").render(context)
    html = _TEMPLATES.get_template("weekly.html").render(context)
    return StaffMail(to=recipient.email, subject=subject, text=text, html=html, language=recipient.language,
                     message_id=f"sb.summary.{week_start.isoformat()}.{recipient.user_id}@{message_id_domain}")


def queue(session: AsyncSession, week_start: date, recipient: Recipient, mail: StaffMail, now: datetime) -> None:
    session.add(SummaryMail(week_start=week_start, user_id=recipient.user_id, address=mail.to,
                            language=mail.language, subject=mail.subject[:300], body_text=mail.text,
                            body_html=mail.html, message_id=mail.message_id, next_attempt_at=now, created_at=now))


def as_mail(row: SummaryMail) -> StaffMail:
    return StaffMail(to=row.address, subject=row.subject, text=row.body_text, html=row.body_html,
                     message_id=row.message_id, language=row.language)


def already_queued(rows: Sequence[int], recipient: Recipient) -> bool:
    return recipient.user_id in rows
