"""A named background job: what it runs, when, under which lease, and the one health shape every job reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.clock import Clock
from core.db.lease import Lease
from core.jobs.backoff import Backoff
from core.jobs.schedule import Every, Schedule

JobState = Literal["running", "standby", "backing_off", "stopped"]


class JobContext:
    """What a running job gets: the clock, its lease (when it has one), a heartbeat and a way to report progress."""

    def __init__(self, name: str, clock: Clock, health: JobHealth, notify: Callable[[], None]) -> None:
        self.name = name
        self.clock = clock
        self.lease: Lease | None = None
        self._health = health
        self._notify = notify

    def beat(self) -> None:
        """Say the job is alive (a long-running body calls this on every round of its loop)."""
        self._health.heartbeat = self.clock.now()

    def succeeded(self) -> None:
        """A long-running body made progress: the failures in a row start again from zero, so the next outage
        begins with a short wait."""
        now = self.clock.now()
        self._health.heartbeat = self._health.last_success = now
        if self._health.failures or self._health.state != "running":
            self._health.failures = 0
            self._health.state = "running"
            self._notify()

    async def check_lease(self) -> None:
        """Raise LeaseLost if the job's lease is gone (another instance may run the job now)."""
        if self.lease is not None:
            await self.lease.check()


Tick = Callable[[JobContext], Awaitable[bool | None]]
Body = Callable[[JobContext], Awaitable[None]]


@dataclass
class JobHealth:
    """One shape for every job in /health and /metrics."""

    name: str
    state: JobState = "stopped"
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0  # in a row; 0 after a success
    next_run: datetime | None = None
    lease: str | None = None
    lease_held: bool = False
    heartbeat: datetime | None = None
    runs: int = 0

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"state": self.state, "last_run": iso(self.last_run), "last_success": iso(self.last_success),
                "last_error": self.last_error, "last_error_at": iso(self.last_error_at), "failures": self.failures,
                "next_run": iso(self.next_run), "lease": self.lease, "lease_held": self.lease_held,
                "heartbeat": iso(self.heartbeat), "runs": self.runs}


@dataclass(frozen=True)
class Job:
    """A named background job. Give it either a `tick` or a `body`:

    - `tick` runs once per `schedule` (its result True means "more work is waiting": it runs again at once);
      a tick that raises is retried after `backoff` instead of at the next scheduled time;
    - `body` runs for as long as it likes (a mailbox reader, a poller); returning ends the job, raising restarts
      it after `backoff`.
    With a `lease`, one instance runs it at a time: a tick job takes the lease for each tick, a body holds it for
    as long as it runs; the other instances stand by and try again every `standby_seconds`.
    """

    name: str
    tick: Tick | None = None
    body: Body | None = None
    schedule: Schedule = field(default_factory=lambda: Every(60.0))
    lease: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    standby_seconds: float = 15.0
    # A new event on one of these topics runs the tick before its time (e.g. a message queued in the outbox)...
    wake_topics: tuple[str, ...] = ()
    # ...after letting more such work gather for this long (one batch instead of many).
    gather_seconds: float = 0.0
    # On stop, a running tick is given until the deadline to finish, unless it handles cancellation itself.
    cancel_on_stop: bool = False
    # Job-specific figures added to its health (counts of what it did).
    details: Callable[[], dict[str, Any]] | None = None
    # Called when the job's health changes state or records an error (a channel mirrors it in its own health).
    on_change: Callable[[JobHealth], None] | None = None

    def __post_init__(self) -> None:
        if (self.tick is None) == (self.body is None):
            raise ValueError(f"job {self.name!r} needs exactly one of tick and body")
