"""The weekly summary on the one job registry.

- The `summary.weekly` due task fires once a week (core/jobs due work: exactly once across instances and
  restarts). Its firing arms next week's task and, when the summary is on, writes one `summary_mails` row per
  recipient (unique per week and person) - in the firing transaction, so a crash leaves either all of it or none.
- The `summary-mail` job (leased: one instance sends) sends the queued rows through the MailSender: each is
  claimed by one statement before the send and marked sent after it. A failed send is retried with a doubling
  wait; a refusal for good (an unknown address) or the last attempt marks it failed with the reason, which the
  admin page shows. A sender that dies between the SMTP answer and its mark leaves the row claimed: it is sent
  again when the claim runs out, with the same Message-ID (mail clients show one).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from core.jobs import Every, Job, JobContext
from core.jobs import service as tasks
from core.jobs.backoff import Backoff
from core.jobs.tasks import DueTask, TaskHandlers
from core.kpis import service as kpis
from core.kpis.schemas import GroupBy, KpiQuery, KpiRow
from core.summaries import repository, service
from core.summaries.models import MailStatus
from core.summaries.schemas import MailSender, PermanentMailError
from core.summaries.settings import SummarySettings

log = logging.getLogger(__name__)

MAIL_JOB = "summary-mail"
CLAIM_SECONDS = 300.0  # a send (SMTP timeout 30 s by default) never takes this long
BATCH = 50



@dataclass
class WeeklySummary:
    """The weekly task's handler and the mail sender job, with what they need."""

    settings: SummarySettings
    sender: MailSender
    message_id_domain: str
    clock: Clock = field(default=SYSTEM_CLOCK)
    runner_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent: int = 0
    failed: int = 0
    last_error: str | None = None
    _armed: bool = False

    async def totals(self, session: AsyncSession, start: date, end: date) -> KpiRow:
        """The KPI totals of the local days start..end (inclusive), as the reports page counts them."""
        report = await kpis.report(session, KpiQuery(date_from=start, date_to=end, group_by=GroupBy.day),
                                   time_zone=self.settings.zone, now=self.clock.now())
        return report.totals

    def register(self, handlers: TaskHandlers) -> None:
        handlers.register(service.SUMMARY_TASK, self.fire)

    async def arm(self, session: AsyncSession, now: datetime) -> bool:
        """Schedule the next weekly task unless it is (one row per send date, whoever arms it)."""
        due = service.next_run(self.settings, now)
        return await tasks.schedule(session, service.SUMMARY_TASK, service.task_key(due, self.settings), due)

    async def fire(self, session: AsyncSession, task: DueTask) -> None:
        """The week's firing: arm the next one; when the summary is on, queue a mail per recipient."""
        await self.arm(session, max(task.due_at, self.clock.now()))
        if not await service.is_enabled(session):
            log.info("weekly summary is off; nothing sent", extra={"key": task.key})
            return
        week = service.week_reported(task.due_at, self.settings)
        people = await service.recipients(session)
        done = await repository.queued_users(session, week)
        people = [p for p in people if p.user_id not in done]
        if not people:
            return
        current = await self.totals(session, week, week + timedelta(days=6))
        previous = await self.totals(session, week - timedelta(days=7), week - timedelta(days=1))
        now = self.clock.now()
        for person in people:
            mail = service.compose(person, week, current, previous, self.settings, self.message_id_domain)
            service.queue(session, week, person, mail, now)
        await session.flush()

    # --- sending ------------------------------------------------------------------------------------------------

    def job(self, sessionmaker: async_sessionmaker[AsyncSession]) -> Job:
        async def tick(ctx: JobContext) -> bool:
            if not self._armed:
                async with sessionmaker() as session, session.begin():
                    await self.arm(session, self.clock.now())
                self._armed = True
            return await self.send_due(sessionmaker, ctx) >= BATCH

        return Job(MAIL_JOB, tick=tick, schedule=Every(self.settings.poll_seconds), lease=MAIL_JOB,
                   backoff=Backoff(initial=5, maximum=300),
                   details=lambda: {"sent": self.sent, "failed": self.failed, "send_error": self.last_error})

    async def send_due(self, sessionmaker: async_sessionmaker[AsyncSession], ctx: JobContext | None = None) -> int:
        """Send the mails due now; returns how many were tried."""
        now = self.clock.now()
        async with sessionmaker() as session:
            ids = await repository.due_ids(session, now, BATCH)
        tried = 0
        for mail_id in ids:
            if ctx is not None:
                await ctx.check_lease()
            now = self.clock.now()
            async with sessionmaker() as session, session.begin():
                row = await repository.claim(session, mail_id, self.runner_id, now,
                                             now + timedelta(seconds=CLAIM_SECONDS))
                mail = service.as_mail(row) if row is not None else None
                attempts = row.attempts if row is not None else 0
            if mail is None:
                continue  # another sender took it
            tried += 1
            status, error, retry_at = MailStatus.sent, None, None
            try:
                await self.sender.send(mail)
            except PermanentMailError as exc:
                status, error = MailStatus.failed, str(exc)[:500]
            except Exception as exc:  # the server or the network: retried
                error = f"{type(exc).__name__}: {exc}"[:500]
                if attempts >= self.settings.max_attempts:
                    status = MailStatus.failed
                else:
                    status = MailStatus.queued
                    wait = min(3600.0, self.settings.retry_seconds * 2 ** (attempts - 1))
                    retry_at = self.clock.now() + timedelta(seconds=wait)
            async with sessionmaker() as session, session.begin():
                await repository.finish(session, mail_id, self.runner_id, status=status, now=self.clock.now(),
                                        error=error, next_attempt_at=retry_at)
            if status == MailStatus.sent:
                self.sent += 1
            else:
                self.last_error = error
                if status == MailStatus.failed:
                    self.failed += 1
                log.warning("summary mail not sent", extra={"mail_id": mail_id, "error": (error or "")[:200],
                                                            "final": status == MailStatus.failed})
        return tried
