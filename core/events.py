"""Live events (ticket changed, message added, outbox queued), published only after the transaction commits.

Services call `emit(session, topic, payload)`; whoever commits the session calls `publish_pending` afterwards.
The bus is in-process; a Redis fan-out for several instances subscribes to the same topics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Event = tuple[str, dict[str, Any]]
_PENDING_KEY = "switchboard.pending_events"

# Local topics about live delivery itself (never forwarded between instances).
# BRIDGE_TOPIC: the cross-instance bridge went down ({"state": "down"}) or works again ({"state": "up"}).
BRIDGE_TOPIC = "live.bridge"
# RESYNC_TOPIC: live events may have been missed; live views catch up from the database
# ({"reason": "reconnected" | "peer_dropped" | "changed_while_down"}).
RESYNC_TOPIC = "live.resync"
LOCAL_TOPICS = frozenset({BRIDGE_TOPIC, RESYNC_TOPIC})


Payload = dict[str, Any] | Callable[[], dict[str, Any]]


def emit(session: AsyncSession, topic: str, payload: Payload) -> None:
    """Queue an event to publish once this session's transaction commits.

    A callable payload is built after the commit, when rows inserted without an explicit flush have their ids.
    """
    session.info.setdefault(_PENDING_KEY, []).append((topic, payload))


def take_pending(session: AsyncSession) -> list[Event]:
    pending: list[tuple[str, Payload]] = session.info.pop(_PENDING_KEY, [])
    return [(topic, payload() if callable(payload) else payload) for topic, payload in pending]


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING_KEY, None)


class EventBus:
    """In-process publish/subscribe with bounded per-subscriber queues (a slow subscriber drops, never blocks).

    `publish` delivers locally and hands the event to the forwarders (the Redis bridge, across instances);
    `deliver_local` is what a forwarder calls with events that came from another instance.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._queue_size = queue_size
        self.forwarders: list[Callable[[str, dict[str, Any]], None]] = []

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.deliver_local(topic, payload)
        for forward in self.forwarders:
            forward(topic, payload)

    def deliver_local(self, topic: str, payload: dict[str, Any]) -> None:
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
