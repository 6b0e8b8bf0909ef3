"""CSAT business rules: the `csat.send` handler sends a resolved ticket's survey once; a customer answers it once.

The survey is an outbound bot message with the quick replies `/csat 1` .. `/csat 5` (Telegram shows them as one
row of inline buttons, the REST channel marks such a reply `"type": "csat"`), written through the outbox in the
firing transaction, together with the ticket's `CsatSurvey` row: so it is sent once across restarts and instances.
An answer sets the score once; a second one is refused ("already rated"). A score at or under
CoreSettings.csat_low_score flags the ticket for the supervisor (history entry + a live TicketChanged "csat_low").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.config import CoreSettings
from core.csat import links, repository
from core.csat.models import CsatSurvey
from core.csat.schedule import CSAT_SEND, QuietHours, parse_hhmm, task_key
from core.csat.schemas import CsatRead, QueueCsatUpdate
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
CSAT_PAYLOAD = "/csat"
EMAIL = "email"


def quick_replies() -> list[dict[str, str]]:
    return [{"title": str(n), "payload": f"{CSAT_PAYLOAD} {n}"} for n in SCORES]


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
        team = await repository.team(session, ticket.team_id)
        if team is None or not team.csat_enabled or await repository.survey_of(session, ticket.id) is not None:
            return
        if ticket.identity is None:
            return  # nobody to ask
        now = self.clock.now()
        zone = ZoneInfo(await repository.calendar_time_zone(session, team.calendar_id)
                        or self.settings.csat_time_zone)
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
                 low_score: int, sent_on: str | None = None, clock: Clock = SYSTEM_CLOCK) -> CsatSurvey:
    """Record the customer's answer to the ticket's survey (once); `sent_on`: only for a ticket of that channel
    (a channel's integration answers for its own customers only).

    Raises:
        ValidationFailedError: the score is not 1-5 (422).
        NotFoundError: no such ticket (404).
        ConflictError: the ticket was sent no survey, or it was rated already (409, `reason` says which).
    """
    if score not in SCORES:
        raise ValidationFailedError("a score is a whole number from 1 to 5", score=score)
    comment = (comment or "").strip() or None
    ticket = await ticket_repo.get(session, ticket_id, lock=True)
    if ticket is None or (sent_on is not None and ticket.channel != sent_on):
        raise NotFoundError(f"ticket {format_ticket_number(ticket_id)} not found"
                            + (f" on the {sent_on} channel" if sent_on else ""))
    survey = await repository.survey_of(session, ticket.id, lock=True)
    if survey is None:
        raise ConflictError(f"ticket {ticket.number} has no satisfaction survey to answer", reason="no_survey")
    if survey.score is not None:
        raise ConflictError(f"ticket {ticket.number} is already rated", reason="already_rated",
                            score=survey.score)
    survey.score = score
    survey.comment = comment
    survey.answered_at = clock.now()
    survey.answer_channel = channel
    survey.flagged = score <= low_score
    audit.record(session, None, "ticket.csat", "ticket", ticket.id, score=score, comment=comment, channel=channel)
    if survey.flagged:
        audit.record(session, None, "ticket.csat_low", "ticket", ticket.id, score=score, comment=comment)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "csat_low" if survey.flagged else "csat"))
    await session.flush()
    return survey


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
        ValidationFailedError: an empty comment (422).
        ConflictError: not rated on that channel yet, or commented already (409).
    """
    comment = comment.strip()
    if not comment:
        raise ValidationFailedError("the comment is empty")
    if len(comment) > 2000:
        raise ValidationFailedError("a comment is at most 2000 characters")
    survey = await repository.survey_of(session, ticket_id, lock=True)
    if survey is None or survey.score is None or survey.answer_channel != channel:
        raise ConflictError("rate first, then add a comment", reason="not_rated")
    if survey.comment is not None:
        raise ConflictError("a comment was added already", reason="already_commented")
    survey.comment = comment
    audit.record(session, None, "ticket.csat_comment", "ticket", ticket_id, comment=comment)
    if survey.flagged:
        ticket = await ticket_repo.get(session, ticket_id)
        if ticket is not None:
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
