"""A queue's settings as one update: name and assignment (core/assignment), hand-over (core/handover), satisfaction
surveys (core/csat)."""

from __future__ import annotations

from pydantic import Field, StrictInt

from core.assignment.schemas import QueueUpdate, QueueWarning
from core.csat.schemas import QueueCsatUpdate
from core.handover.schemas import QueueHandoverUpdate
from core.users.models import Team
from core.users.schemas import TeamRead


class QueueSettingsUpdate(QueueUpdate, QueueHandoverUpdate):
    """Everything `PATCH /admin/queues/{slug}` changes: name and assignment, the hand-over and the surveys."""

    csat_enabled: bool | None = Field(
        default=None, description="Whether customers get a satisfaction survey after a person resolves a ticket.")
    csat_delay_minutes: StrictInt | None = Field(
        default=None, ge=0, le=10080, description="How long after the resolution the survey goes out.")

    def csat_part(self, team: Team) -> QueueCsatUpdate | None:
        """The survey settings when one of them was given (the other stays as the queue has it)."""
        if self.csat_enabled is None and self.csat_delay_minutes is None:
            return None
        return QueueCsatUpdate(
            csat_enabled=team.csat_enabled if self.csat_enabled is None else self.csat_enabled,
            csat_delay_minutes=team.csat_delay_minutes if self.csat_delay_minutes is None
            else self.csat_delay_minutes)

    def assignment_part(self) -> QueueUpdate:
        return QueueUpdate.model_validate(self.model_dump(include=set(QueueUpdate.model_fields), exclude_unset=True))

    def handover_part(self) -> QueueHandoverUpdate | None:
        """The hand-over fields given (None: none were); an explicit `calendar_id: null` stays explicit."""
        given = self.model_dump(include=set(QueueHandoverUpdate.model_fields), exclude_unset=True)
        return QueueHandoverUpdate.model_validate(given) if given else None


class QueueSaved(TeamRead):
    """The queue as saved, with what will keep its tickets waiting (shown, never refused)."""

    warnings: list[QueueWarning] = Field(default_factory=list)
