"""Live events (ticket changed, message added, outbox queued), published only after the transaction commits.

Services call `emit(session, topic, payload)`; whoever commits the session publishes `take_pending(session)`
afterwards. The bus is in-process; a Redis fan-out for several instances subscribes to the same topics.

Every topic is a `Topic`, and every payload a frozen dataclass below (`MessageAdded`, `TicketChanged`, ...):
publishers build them, `take_pending` turns them into the plain dicts the bus carries (and the Redis bridge
sends as JSON), so subscribers in this instance and in others read the same shape. A payload's `to_payload`
is its wire format: web chat and console clients depend on it, so change it only with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

if TYPE_CHECKING:
    from core.tickets.models import Ticket


class Topic(enum.StrEnum):
    """Every topic of the bus (a str: a topic read back from Redis compares and hashes equal)."""

    TICKETS = "tickets"  # TicketChanged
    MESSAGES = "messages"  # MessageAdded
    QUARANTINE = "quarantine"  # Quarantined
    OUTBOX_QUEUED = "outbox.queued"  # OutboxQueued (local only: the dispatcher of this instance wakes up)
    OUTBOX_SENT = "outbox.sent"  # OutboxSent
    OUTBOX_FAILED = "outbox.failed"  # OutboxFailed
    TYPING = "typing"  # Typing
    PRESENCE = "presence"  # AgentPresence (for signed-in console users only: who is on a ticket's page)
    NLU_MODEL = "nlu.model"  # {"version"}: a model version was switched on; other instances load it too
    NLU_JOBS = "nlu.jobs"  # {"job_id", ...}: a training job moved on
    PROBLEMS = "problems"  # ProblemAlertChanged
    CHANNEL_CONFIGS = "channels.configs"  # {"id", "version"}: a channel set up in the console changed
    # About live delivery itself (never forwarded between instances):
    LIVE_BRIDGE = "live.bridge"  # BridgeState
    LIVE_RESYNC = "live.resync"  # Resync


BRIDGE_TOPIC = Topic.LIVE_BRIDGE
RESYNC_TOPIC = Topic.LIVE_RESYNC
LOCAL_TOPICS = frozenset({BRIDGE_TOPIC, RESYNC_TOPIC})


ResyncReason = Literal["reconnected", "peer_dropped", "changed_while_down", "bridge_down"]


class LiveEvent(Protocol):
    """A typed payload: its topic, and the dict the bus carries."""

    topic: ClassVar[Topic]

    def to_payload(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class TicketChanged:
    """A ticket's state changed (`kind`: created, continued, reopened, status, assigned, replied, ...)."""

    topic: ClassVar[Topic] = Topic.TICKETS
    kind: str
    ticket_id: int
    number: str
    status: str
    team_id: int | None
    assignee_id: int | None
    priority: str

    @classmethod
    def of(cls, ticket: Ticket, kind: str) -> TicketChanged:
        return cls(kind=kind, ticket_id=ticket.id, number=ticket.number, status=ticket.status.value,
                   team_id=ticket.team_id, assignee_id=ticket.assignee_id, priority=ticket.priority.value)

    def to_payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "ticket_id": self.ticket_id, "number": self.number, "status": self.status,
                "team_id": self.team_id, "assignee_id": self.assignee_id, "priority": self.priority}


@dataclass(frozen=True, slots=True)
class TicketTakenOver:
    """A ticket was taken from the person who held it (`previous_assignee_id`), by a take-over or a reassignment.

    Console pages refresh on it like on any ticket change; the previous holder's pages also tell them.
    """

    topic: ClassVar[Topic] = Topic.TICKETS
    ticket_id: int
    number: str
    previous_assignee_id: int
    assignee_id: int | None
    assignee_name: str | None
    kind: str = "taken_over"

    def to_payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "ticket_id": self.ticket_id, "number": self.number,
                "previous_assignee_id": self.previous_assignee_id, "assignee_id": self.assignee_id,
                "assignee_name": self.assignee_name}


@dataclass(frozen=True, slots=True)
class ProblemAlertChanged:
    """A rising-problem alert was raised or resolved (`kind`), or its figures changed (updated)."""

    topic: ClassVar[Topic] = Topic.PROBLEMS
    kind: Literal["raised", "updated", "resolved"]
    alert_id: int
    dimension: str
    key: str
    count: int
    usual: float
    ratio: float

    def to_payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "alert_id": self.alert_id, "dimension": self.dimension, "key": self.key,
                "count": self.count, "usual": self.usual, "ratio": self.ratio}


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What a live view shows of an outbound message, carried in its event so nobody reads it back."""

    text: str
    created_at: datetime
    attachments: list[dict[str, Any]] = field(default_factory=list)
    quick_replies: list[dict[str, str]] = field(default_factory=list)
    author_name: str | None = None  # an agent's display name (users.display_name or the name's first word)

    def to_payload(self) -> dict[str, Any]:
        # One shape for every author: the bot's content carries author_name None.
        return {"text": self.text, "created_at": self.created_at.isoformat(), "attachments": self.attachments,
                "quick_replies": self.quick_replies, "author_name": self.author_name}


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message was added to a ticket: the customer's (inbound), or a bot's or an agent's answer (outbound).

    An outbound message carries its `content` (the web chat pushes it without a query); an inbound one does not.
    """

    topic: ClassVar[Topic] = Topic.MESSAGES
    ticket_id: int
    message_id: int
    direction: Literal["inbound", "outbound"]
    author_kind: str
    customer_id: int
    channel: str
    thread_key: str | None
    content: MessageContent | None = None

    @classmethod
    def of(cls, ticket: Ticket, message_id: int, author_kind: str,
           content: MessageContent | None = None) -> MessageAdded:
        """The event of a message of `ticket`: the one place its payload is built."""
        return cls(ticket_id=ticket.id, message_id=message_id,
                   direction="inbound" if author_kind == "customer" else "outbound", author_kind=author_kind,
                   customer_id=ticket.customer_id, channel=ticket.channel, thread_key=ticket.thread_key,
                   content=content)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "ticket_id": self.ticket_id, "message_id": self.message_id, "direction": self.direction,
            "author_kind": self.author_kind, "customer_id": self.customer_id, "channel": self.channel,
            "thread_key": self.thread_key}
        if self.content is not None:
            payload["content"] = self.content.to_payload()
        return payload


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A channel payload that could not be parsed was kept with its reason."""

    topic: ClassVar[Topic] = Topic.QUARANTINE
    id: int
    channel: str
    reason: str

    def to_payload(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class OutboxQueued:
    """Outbound messages of `channel` are due: the dispatcher looks now instead of at its next poll."""

    topic: ClassVar[Topic] = Topic.OUTBOX_QUEUED
    channel: str
    ticket_id: int | None

    def to_payload(self) -> dict[str, Any]:
        return {"channel": self.channel, "ticket_id": self.ticket_id}


@dataclass(frozen=True, slots=True)
class OutboxSent:
    topic: ClassVar[Topic] = Topic.OUTBOX_SENT
    outbox_id: int
    ticket_id: int | None
    message_id: int | None

    def to_payload(self) -> dict[str, Any]:
        return {"outbox_id": self.outbox_id, "ticket_id": self.ticket_id, "message_id": self.message_id}


@dataclass(frozen=True, slots=True)
class OutboxFailed:
    """An outbound message failed for good (agents see it as failed)."""

    topic: ClassVar[Topic] = Topic.OUTBOX_FAILED
    outbox_id: int
    ticket_id: int | None
    error: str | None

    def to_payload(self) -> dict[str, Any]:
        return {"outbox_id": self.outbox_id, "ticket_id": self.ticket_id, "error": self.error}


@dataclass(frozen=True, slots=True)
class Typing:
    """Someone is typing in a conversation (`direction` inbound: the customer; outbound: an agent)."""

    topic: ClassVar[Topic] = Topic.TYPING
    channel: str
    direction: Literal["inbound", "outbound"]
    thread_key: str
    active: bool
    author: str | None = None  # outbound: the agent's display name ("Anna is typing…")

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"channel": self.channel, "direction": self.direction,
                                   "thread_key": self.thread_key, "active": self.active}
        if self.author is not None:
            payload["author"] = self.author
        return payload


PresenceState = Literal["viewing", "typing", "left"]
Composer = Literal["reply", "note"]


@dataclass(frozen=True, slots=True)
class AgentPresence:
    """A console user is viewing a ticket's page, typing on it (a reply or an internal note), or left it.

    Ephemeral: nothing is stored; pages repeat "viewing" while open, and forget a viewer not heard from for a while.
    Only console streams of signed-in users forward it (customers never subscribe to this topic).
    """

    topic: ClassVar[Topic] = Topic.PRESENCE
    ticket_id: int
    user_id: int
    name: str
    state: PresenceState
    what: Composer | None = None

    def to_payload(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "user_id": self.user_id, "name": self.name, "state": self.state,
                "what": self.what}


@dataclass(frozen=True, slots=True)
class BridgeState:
    """The cross-instance bridge went down, or works again."""

    topic: ClassVar[Topic] = Topic.LIVE_BRIDGE
    state: Literal["down", "up"]

    def to_payload(self) -> dict[str, Any]:
        return {"state": self.state}


@dataclass(frozen=True, slots=True)
class Resync:
    """Live events may have been missed: live views catch up from the database."""

    topic: ClassVar[Topic] = Topic.LIVE_RESYNC
    reason: ResyncReason

    def to_payload(self) -> dict[str, Any]:
        return {"reason": self.reason}


Event = tuple[str, dict[str, Any]]
_PENDING_KEY = "switchboard.pending_events"
Payload = dict[str, Any] | LiveEvent | Callable[[], dict[str, Any] | LiveEvent]


def _plain(payload: dict[str, Any] | LiveEvent) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else payload.to_payload()


def emit(session: AsyncSession, topic: Topic, payload: Payload) -> None:
    """Queue an event to publish once this session's transaction commits.

    `topic` is a Topic; `payload` one of the payloads above (a dict for the NLU topics). A callable payload is
    built after the commit, when rows inserted without an explicit flush have their ids.
    """
    session.info.setdefault(_PENDING_KEY, []).append((topic, payload))


def take_pending(session: AsyncSession) -> list[Event]:
    pending: list[tuple[str, Payload]] = session.info.pop(_PENDING_KEY, [])
    return [(topic, _plain(payload() if callable(payload) else payload)) for topic, payload in pending]


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING_KEY, None)


@contextlib.asynccontextmanager
async def publishing_transaction(sessionmaker: async_sessionmaker[AsyncSession],
                                 bus: EventBus | None) -> AsyncIterator[AsyncSession]:
    """A session in one transaction whose emitted events are published after it commits (and dropped, never
    published, when it rolls back): what a background job's unit of work needs."""
    async with sessionmaker() as session:
        try:
            async with session.begin():
                yield session
        except BaseException:
            discard_pending(session)
            raise
        events = take_pending(session)
    if bus is not None:
        bus.publish_all(events)


class EventBus:
    """In-process publish/subscribe with bounded per-subscriber queues (a slow subscriber drops, never blocks).

    `publish` delivers locally and hands the event to the forwarders (the Redis bridge, across instances);
    `deliver_local` is what a forwarder calls with events that came from another instance.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._queue_size = queue_size
        self.forwarders: list[Callable[[str, dict[str, Any]], None]] = []

    def publish(self, topic: str, payload: dict[str, Any] | LiveEvent) -> None:
        payload = _plain(payload)
        self.deliver_local(topic, payload)
        for forward in self.forwarders:
            forward(topic, payload)

    def deliver_local(self, topic: str, payload: dict[str, Any] | LiveEvent) -> None:
        payload = _plain(payload)
        for key in (topic, "*"):
            for queue in list(self._subscribers.get(key, ())):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait((topic, payload))

    def publish_all(self, events: list[Event]) -> None:
        for topic, payload in events:
            self.publish(topic, payload)

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        for topic in topics or ("*",):
            self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            for topic in topics or ("*",):
                self._subscribers[topic].discard(queue)
