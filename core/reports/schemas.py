"""What the board shows: loaded rows and counts, not request or response models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.assignment.schemas import Presence
from core.tickets.models import Ticket
from core.users.models import Team, User


@dataclass
class AgentLoad:
    user: User
    open_count: int
    presence: Presence


@dataclass
class QueueState:
    team: Team
    waiting: int
    open_count: int
    oldest: Ticket | None


@dataclass
class Board:
    agents: list[AgentLoad]
    queues: list[QueueState]
    per_day: list[tuple[str, int]]
    by_status: dict[str, int]
    tickets: Sequence[Ticket] = field(default_factory=list)
