"""CSAT business rules: the `csat.send` handler sends a resolved ticket's survey once; a customer answers it once.

The survey is an outbound bot message with the quick replies `/csat 1` .. `/csat 5` (Telegram shows them as one
row of inline buttons, the REST channel marks such a reply `"type": "csat"`), written through the outbox in the
firing transaction, together with the ticket's `CsatSurvey` row: so it is sent once across restarts and instances.
An answer sets the score once; a second one is refused ("already rated"). A score at or under
CoreSettings.csat_low_score flags the ticket for the supervisor (history entry + a live TicketChanged "csat_low").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.calendars import repository as calendars
from core.clock import SYSTEM_CLOCK, Clock
from core.config import CoreSettings
from core.csat import links, repository
from core.csat.models import CsatSurvey
from core.csat.schedule import CSAT_SEND, QuietHours, parse_hhmm, task_key
from core.csat.schemas import MAX_COMMENT, CsatRead, QueueCsatUpdate
from core.customers.models import Customer
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.events import TicketChanged, Topic, emit
from core.i18n import normalise, translator
from core.jobs import service as tasks
from core.jobs.tasks import DueTask, TaskHandlers
from core.tickets import repository as ticket_repo
from core.tickets import service as ticket_service
from core.tickets.models import AuthorKind, Ticket, TicketStatus, format_ticket_number
from core.users.models import Team, User

log = logging.getLogger(__name__)

SCORES = range(1, 6)
CSAT_PAYLOAD = "/csat"  # a survey answer's quick-reply payload: "/csat 1" .. "/csat 5"
EMAIL = "email"


def quick_replies() -> list[dict[str, str]]:
    return [{"title": str(n), "payload": f"{CSAT_PAYLOAD} {n}"} for n in SCORES]


def is_survey_payload(payload: str) -> bool:
    """A survey answer's payload (`/csat 3`), whatever the score in it."""
    return payload.startswith(CSAT_PAYLOAD)


def is_survey(payloads: Sequence[str]) -> bool:
    """Quick replies that are a satisfaction survey: there are some, and every one is a score."""
    return bool(payloads) and all(is_survey_payload(p) for p in payloads)


def survey_score(payload: str) -> int | None:
    """The score a survey button carries (`/csat 3`, Telegram's `/csat_3`), None for any other payload or score."""
    if not is_survey_payload(payload):
        return None
    score = payload[len(CSAT_PAYLOAD):].strip(" :_")
    # Compared as text, not isdigit(): it takes "¹", which int() refuses.
    return int(score) if score in {str(n) for n in SCORES} else None


def pressed_score(extra: Mapping[str, Any]) -> int | None:
    """The score of an inbound survey button press (`csat` in the message's extra, set by the channel)."""
    score = extra.get("csat")
    return score if isinstance(score, int) and not isinstance(score, bool) else None


@dataclass
class CsatSurveys:
    """The `csat.send` handler with the settings it needs; `register` adds it to the app's task handlers."""

    settings: CoreSettings
    clock: Clock = field(default=SYSTEM_CLOCK)
    link_secret: str | None = None  # signs the e-mail survey's links (the app's secret key)

    @property
    def quiet(self) -> QuietHours:
        return QuietHours(parse_hhmm(self.settings.csat_quiet_from), parse_hhmm(self.settings.csat_quiet_until))

    def register(self, handlers: TaskHandlers) -> None:
        handlers.register(CSAT_SEND, self.send)

    async def send(self, session: AsyncSession, task: DueTask) -> None:
        """Send the survey of the task's ticket, unless it is no longer due one (then the task is just done)."""
        ticket_id = task.payload.get("ticket_id")
        if not isinstance(ticket_id, int):
            log.warning("csat.send task without a ticket id dropped", extra={"key": task.key})
            return
        ticket = await ticket_repo.get(session, ticket_id, lock=True)
        if ticket is None or not _still_due(ticket):
            return  # deleted, merged, reopened (or resolved by the bot since): no survey
        team = await session.get(Team, ticket.team_id) if ticket.team_id is not None else None
        if team is None or not team.csat_enabled or await repository.survey_of(session, ticket.id) is not None:
            return
        if ticket.identity is None:
            return  # nobody to ask
        customer = await session.get(Customer, ticket.customer_id)
        if customer is None or customer.erased_at is not None or not customer.consent_notices:
            # A survey is a message the customer did not ask for: not to those who withdrew consent to notices.
            audit.record(session, None, "ticket.csat_skipped", "ticket", ticket.id,
                         reason="erased" if customer is not None and customer.erased_at else "no_consent")
            return
        now = self.clock.now()
        calendar = await calendars.get(session, team.calendar_id) if team.calendar_id is not None else None
        zone = ZoneInfo(calendar.time_zone if calendar is not None else self.settings.csat_time_zone)
        release = self.quiet.release(now, zone)
        if release != now:  # quiet hours: the same task again at their end
            await tasks.reschedule(session, CSAT_SEND, task_key(ticket.id), release, task.payload)
            return
        language = ticket.language
        text = translator(language)("csat.question")
        if ticket.channel == EMAIL and self.link_secret:
            text = "\n\n".join([text, *self.rating_links(self.link_secret, ticket.id, language, now)])
        await ticket_service.add_outbound(
            session, ticket, text=text, author_kind=AuthorKind.bot, quick_replies=quick_replies(), language=language)
        session.add(CsatSurvey(ticket_id=ticket.id, channel=ticket.channel, language=language, sent_at=now))
        audit.record(session, None, "ticket.csat_sent", "ticket", ticket.id, channel=ticket.channel)
        await session.flush()


    def rating_links(self, secret: str, ticket_id: int, language: str | None, now: datetime) -> list[str]:
        """One signed link per score, best first, for the e-mail survey."""
        expires = now + timedelta(days=self.settings.csat_link_days)
        _ = translator(language)
        base = self.settings.csat_public_url.rstrip("/")
        lang = normalise(language)
        return [f"{_('csat.score.' + str(n))}: {base}/csat/{links.sign(secret, ticket_id, n, expires)}"
                f"?lang={lang}" for n in reversed(SCORES)]


def _still_due(ticket: Ticket) -> bool:
    return (ticket.merged_into_id is None and not ticket.resolved_by_bot
            and ticket.status in (TicketStatus.resolved, TicketStatus.closed))


async def submit(session: AsyncSession, ticket_id: int, score: int, comment: str | None, channel: str, *,
                 low_score: int, sent_on: str | None = None, clock: Clock = SYSTEM_CLOCK) -> CsatRead:
    """Record the customer's answer to the ticket's survey (once); `sent_on`: only for a ticket of that channel
    (a channel's integration answers for its own customers only).

    Raises:
        ValidationFailedError: the score is not 1-5 (422).
        NotFoundError: no such ticket (404).
        ConflictError: the ticket was sent no survey, or it was rated already (409, `reason` says which).
    """
    if score not in SCORES:
        raise ValidationFailedError("a score is a whole number from 1 to 5", score=score)
    ticket, survey = await _ticket_and_survey(session, ticket_id, sent_on, lock=True)
    return await record_score(session, ticket, survey, score, comment, channel, low_score=low_score, clock=clock)


async def check_answerable(session: AsyncSession, ticket_id: int, *, sent_on: str | None = None) -> None:
    """What `submit` would refuse, found without writing (the e-mail page asks before it records).

    Raises:
        NotFoundError: no such ticket (404).
        ConflictError: the ticket was sent no survey, or it was rated already (409, `reason` says which).
    """
    _open_survey(*await _ticket_and_survey(session, ticket_id, sent_on, lock=False))


def _open_survey(ticket: Ticket, survey: CsatSurvey | None) -> CsatSurvey:
    """The survey, if it is there to answer; else the ConflictError saying why not."""
    if survey is None:
        raise ConflictError(f"ticket {ticket.number} has no satisfaction survey to answer", reason="no_survey")
    if survey.score is not None:
        raise ConflictError(f"ticket {ticket.number} is already rated", reason="already_rated", score=survey.score)
    return survey


async def _ticket_and_survey(session: AsyncSession, ticket_id: int, sent_on: str | None, *,
                             lock: bool) -> tuple[Ticket, CsatSurvey | None]:
    ticket = await ticket_repo.get(session, ticket_id, lock=lock)
    if ticket is None or (sent_on is not None and ticket.channel != sent_on):
        raise NotFoundError(f"ticket {format_ticket_number(ticket_id)} not found"
                            + (f" on the {sent_on} channel" if sent_on else ""))
    return ticket, await repository.survey_of(session, ticket.id, lock=lock)


async def record_score(session: AsyncSession, ticket: Ticket, survey: CsatSurvey | None, score: int,
                       comment: str | None, channel: str, *, low_score: int,
                       clock: Clock = SYSTEM_CLOCK) -> CsatRead:
    """`submit` for a caller that has the ticket and its (locked) survey row already (the ingest pipeline).

    Raises:
        ValidationFailedError: the score is not 1-5 (422).
        ConflictError: no survey (`no_survey`), or it was rated already (`already_rated`) (409).
    """
    if score not in SCORES:
        raise ValidationFailedError("a score is a whole number from 1 to 5", score=score)
    survey = _open_survey(ticket, survey)
    now = clock.now()
    comment = (comment or "").strip() or None
    survey.score = score
    survey.comment = comment
    survey.answered_at = now
    survey.answer_channel = channel
    survey.flagged = score <= low_score
    audit.record(session, None, "ticket.csat", "ticket", ticket.id, score=score, comment=comment, channel=channel)
    if survey.flagged:
        audit.record(session, None, "ticket.csat_low", "ticket", ticket.id, score=score, comment=comment)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "csat_low" if survey.flagged else "csat"))
    await session.flush()
    return CsatRead(score=score, comment=comment, channel=channel, at=now, flagged=survey.flagged)


async def answer_of(session: AsyncSession, ticket_id: int) -> CsatSurvey | None:
    """The ticket's answered survey, or None (not sent, or not answered yet)."""
    survey = await repository.survey_of(session, ticket_id)
    return survey if survey is not None and survey.score is not None else None


async def answer_read(session: AsyncSession, ticket_id: int) -> CsatRead | None:
    """The ticket's answer as the ticket JSON shows it (`"csat"`), or None."""
    survey = await answer_of(session, ticket_id)
    if survey is None or survey.score is None or survey.answered_at is None:
        return None
    return CsatRead(score=survey.score, comment=survey.comment, channel=survey.answer_channel or survey.channel,
                    at=survey.answered_at, flagged=survey.flagged)


async def add_comment(session: AsyncSession, ticket_id: int, comment: str, channel: str) -> CsatSurvey:
    """The comment a customer adds after rating (the e-mail page): once, to an answer given on `channel`.

    Raises:
        ValidationFailedError: an empty comment, or one over MAX_COMMENT characters (422, `reason` says which).
        ConflictError: not rated on that channel yet, or commented already (409).
    """
    survey = await repository.survey_of(session, ticket_id, lock=True)
    ticket = await ticket_repo.get(session, ticket_id) if survey is not None and survey.flagged else None
    return await record_comment(session, ticket_id, ticket, survey, comment, channel)


async def record_comment(session: AsyncSession, ticket_id: int, ticket: Ticket | None, survey: CsatSurvey | None,
                         comment: str, channel: str) -> CsatSurvey:
    """`add_comment` for a caller that has the (locked) survey row already; `ticket`: for the live update of a
    flagged answer."""
    comment = comment.strip()
    if not comment:
        raise ValidationFailedError("the comment is empty", reason="empty")
    if len(comment) > MAX_COMMENT:
        raise ValidationFailedError(f"a comment is at most {MAX_COMMENT} characters", reason="too_long",
                                    limit=MAX_COMMENT)
    if survey is None or survey.score is None or survey.answer_channel != channel:
        raise ConflictError("rate first, then add a comment", reason="not_rated")
    if survey.comment is not None:
        raise ConflictError("a comment was added already", reason="already_commented")
    survey.comment = comment
    audit.record(session, None, "ticket.csat_comment", "ticket", ticket_id, comment=comment)
    if survey.flagged and ticket is not None:
        emit(session, Topic.TICKETS, TicketChanged.of(ticket, "csat_low"))
    await session.flush()
    return survey


async def update_queue(session: AsyncSession, team: Team, body: QueueCsatUpdate, actor: User) -> Team:
    """Turn a queue's surveys on or off and set their delay (audited when something changed)."""
    old = {"csat_enabled": team.csat_enabled, "csat_delay_minutes": team.csat_delay_minutes}
    if old == body.model_dump():
        return team
    team.csat_enabled = body.csat_enabled
    team.csat_delay_minutes = body.csat_delay_minutes
    audit.record(session, actor, "queue.csat", "team", team.id, old=old, new=body.model_dump())
    await session.flush()
    return team
