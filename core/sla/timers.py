"""The SLA timer: the due-task handler (kind "sla") that fires a ticket's warnings and breaches.

It runs inside the due-task runner's firing transaction (core/jobs/tasks.py), which marked the task done first: the
alerts recorded in the ticket's clock (`notified`), the history entries, the actions and the re-armed timer commit
together with that mark, or not at all, so every alert fires once across restarts and instances. A timer whose
ticket has no clock any more (policy deleted, ticket deleted or merged) or is not with humans is dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.decision import texts
from core.events import Topic, emit
from core.jobs.tasks import DueTask, TaskHandlers
from core.sla import repository
from core.sla import service as sla
from core.sla.models import SlaPolicy, TicketSla
from core.tickets import service as ticket_service
from core.tickets.models import AuthorKind, Priority, Ticket, TicketStatus
from core.users.models import Team

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlaAlert:
    """A ticket's SLA target reached its warning point or was breached: the assignee's and the queue supervisors'
    console pages show a notice (and refresh like on any ticket change)."""

    topic: ClassVar[Topic] = Topic.TICKETS
    ticket_id: int
    number: str
    level: str  # warning | breach
    target: str  # first_response | next_response | resolution
    due_at: str
    assignee_id: int | None
    team_id: int | None
    status: str
    priority: str

    @property
    def kind(self) -> str:
        return f"sla_{self.level}"

    def to_payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "ticket_id": self.ticket_id, "number": self.number, "level": self.level,
                "target": self.target, "due_at": self.due_at, "assignee_id": self.assignee_id,
                "team_id": self.team_id, "status": self.status, "priority": self.priority}


class SlaTimers:
    """Fires the SLA alerts of one ticket per task; `clock` is the runner's (tests move it)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.dropped = 0

    def register(self, handlers: TaskHandlers) -> None:
        handlers.register(sla.TASK_KIND, self.fire)

    async def fire(self, session: AsyncSession, task: DueTask) -> None:
        ticket_id = sla.ticket_id_of_key(task.key)
        found = await repository.clock_and_ticket_for_firing(session, ticket_id) if ticket_id is not None else None
        if found is None:
            self._drop(task, "no SLA clock (policy or ticket deleted)")
            return
        row, ticket = found
        row.armed_at = None  # this firing spends the timer (its task is marked done in this transaction)
        if ticket.merged_into_id is not None or ticket.status != TicketStatus.open or row.paused_at is not None:
            self._drop(task, "ticket merged, paused or not with humans")
            return
        policy = await repository.get_policy(session, row.policy_id)
        if policy is None:
            self._drop(task, "policy deleted")
            return
        now = self.clock.now()
        due = [(moment, target, level) for moment, target, level in sla.pending_alerts(row) if moment <= now]
        if not due:  # moved later since it was armed (a reply, a resume): arm for the new moment
            await sla.arm(session, ticket, row)
            return
        row.notified = [*row.notified, *(f"{target}:{level}" for _, target, level in due)]
        row.updated_at = now
        for moment, target, level in due:
            audit.record(session, None, f"sla.{level}", "ticket", ticket.id, target=target,
                         due_at=moment.isoformat(), policy=policy.name)
            emit(session, Topic.TICKETS, SlaAlert(ticket.id, ticket.number, level, target, moment.isoformat(),
                                                  ticket.assignee_id, ticket.team_id, ticket.status.value,
                                                  ticket.priority.value))
        if any(target == "first_response" and level == "warning" for _, target, level in due):
            await self._remind(session, ticket, row)
        changed = False
        for level in sorted({level for _, _, level in due}, key=sla.LEVELS.index):
            actions = policy.warning_actions if level == "warning" else policy.breach_actions
            changed = await self._act(session, ticket, actions, level, policy) or changed
        if changed:  # the ticket service re-matched the clock (possibly away): arm from what it left
            await sla.track(session, ticket, now=now)
        else:
            await sla.arm(session, ticket, row)

    def _drop(self, task: DueTask, why: str) -> None:
        self.dropped += 1
        log.info("SLA timer dropped", extra={"key": task.key, "reason": why})

    async def _remind(self, session: AsyncSession, ticket: Ticket, row: TicketSla) -> None:
        """The customer still waits for the first answer: one short note that the team has it (once per ticket)."""
        if row.reminded or row.first_response_met_at is not None or ticket.identity is None:
            return
        row.reminded = True
        language = ticket.language or "en"
        await ticket_service.add_outbound(
            session, ticket, text=texts.text("sla_reminder", language, ticket=ticket.number),
            author_kind=AuthorKind.bot, language=language, intent="sla_reminder")

    async def _act(self, session: AsyncSession, ticket: Ticket, actions: dict[str, Any], level: str,
                   policy: SlaPolicy) -> bool:
        """The policy's optional actions for this level, done by the ticket service as by no person (audited with
        the policy and level); whether the ticket changed."""
        changed = False
        why = {"by": "sla", "level": level, "policy": policy.name}
        now = self.clock.now()
        if actions.get("raise_priority"):
            order = list(Priority)
            higher = order[min(ticket.priority.rank + 1, len(order) - 1)]
            if higher != ticket.priority:
                await ticket_service.change_priority(session, ticket, higher, None, now=now, **why)
                changed = True
        queue_id = actions.get("move_to_queue_id")
        if isinstance(queue_id, int) and queue_id != ticket.team_id:
            team = await session.get(Team, queue_id)
            if team is not None:  # a queue deleted since the policy was saved: nothing to move to
                await ticket_service.transfer(session, ticket, team, None, now=now, **why)
                changed = True
        if actions.get("unassign") and ticket.assignee_id is not None:
            await ticket_service.system_assign(session, ticket, None, action="ticket.assign", now=now,
                                               tell_holder=True, **why)
            changed = True
        return changed
