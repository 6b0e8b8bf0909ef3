"""Fans live events out across instances through Redis pub/sub (web-chat pushes, console updates).

Each instance publishes its bus events to one Redis channel with its own id and re-delivers other
instances' events to its local subscribers. Events are notifications, not data, and Redis pub/sub keeps
nothing for a subscriber that is away, so the bridge never pretends to be reliable; it says when it may have
missed something and live views catch up from the database:

- a publish that fails stays in a bounded buffer and is retried (backoff with jitter, capped at a few seconds,
  cut short as soon as the subscriber sees Redis again); when the buffer overflows the oldest events are
  dropped and, once Redis is back, the other instances are told to resync;
- the bridge announces on the local bus (`core.events.BRIDGE_TOPIC`) when it goes down and when it is up
  again, and raises `RESYNC_TOPIC` after every reconnect, so web chat and the console catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from core.db.base import utcnow
from core.events import BRIDGE_TOPIC, LOCAL_TOPICS, RESYNC_TOPIC, BridgeState, EventBus, Resync, Topic
from core.jobs import Backoff

log = logging.getLogger(__name__)
CHANNEL = "switchboard:events"
# Topics that only make sense in the instance that raised them.
LOCAL_ONLY = frozenset({Topic.OUTBOX_QUEUED}) | LOCAL_TOPICS
BACKOFF_START = 0.05
# How long stop() waits for its tasks and connections: a shutdown must not hang on a connection that never
# finishes closing (a test waited 540 s in stop() once, its own timeout swallowed by the wait for a task).
STOP_SECONDS = 5.0


class _Side:
    """The state of one of the bridge's two connections (publisher, subscriber)."""

    __slots__ = ("last_error", "since", "state")

    def __init__(self) -> None:
        self.state = "starting"
        self.since: datetime = utcnow()
        self.last_error: str | None = None

    def set(self, state: str) -> bool:
        if state == self.state:
            return False
        self.state, self.since = state, utcnow()
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since.isoformat(), "last_error": self.last_error}


class RedisEventBridge:
    def __init__(self, bus: EventBus, url: str, *, channel: str = CHANNEL, instance: str | None = None,
                 buffer_size: int = 10_000, max_backoff: float = 2.0) -> None:
        self.bus = bus
        self.redis: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2,
                                           health_check_interval=5)
        self.channel = channel
        self.instance = instance or uuid.uuid4().hex
        self.max_backoff = max_backoff
        self.publisher = _Side()
        self.subscriber = _Side()
        self.last_error: str | None = None
        self.reconnects = 0  # subscriber re-subscribed after having been down
        self.published = 0
        self.received = 0
        self.retried = 0  # publish attempts that failed and were tried again
        self.dropped = 0  # events pushed out of a full buffer (peers are told to resync)
        self._buffer: deque[bytes] = deque()
        self._buffer_size = buffer_size
        self._wake = asyncio.Event()  # something to publish
        self._redis_back = asyncio.Event()  # the subscriber reached Redis: stop waiting, publish now
        self._owe_resync = False
        self._tasks: list[asyncio.Task[None]] = []

    # -- the local side ------------------------------------------------------------------------------

    def forward(self, topic: str, payload: dict[str, Any]) -> None:
        if topic in LOCAL_ONLY:
            return
        self._enqueue(json.dumps({"o": self.instance, "t": topic, "p": payload}, default=str).encode())

    def _enqueue(self, data: bytes) -> None:
        if len(self._buffer) >= self._buffer_size:
            self._buffer.popleft()
            self.dropped += 1
            self._owe_resync = True
        self._buffer.append(data)
        self._wake.set()

    @property
    def state(self) -> str:
        """down when either connection failed and has not worked since; connected once the subscriber is."""
        if "down" in (self.publisher.state, self.subscriber.state):
            return "down"
        return "connected" if self.subscriber.state == "connected" else "starting"

    async def start(self) -> None:
        self.bus.forwarders.append(self.forward)
        self._tasks = [asyncio.create_task(self._publisher(), name="redis-publish"),
                       asyncio.create_task(self._subscriber(), name="redis-subscribe")]

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.bus.forwarders.remove(self.forward)
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # asyncio.wait: the caller's own cancellation still goes through
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            if pending:
                log.warning("redis bridge: %d task(s) still running %.0f s after stop", len(pending), STOP_SECONDS)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_SECONDS):
                await self.redis.aclose()

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "publisher": self.publisher.as_dict(), "subscriber": self.subscriber.as_dict(),
                "last_error": self.last_error, "instance": self.instance, "reconnects": self.reconnects,
                "published": self.published, "received": self.received, "retried": self.retried,
                "dropped": self.dropped, "buffered": len(self._buffer)}

    def _backoff(self, attempt: int) -> float:
        # Jittered: instances that lost Redis together do not come back in lockstep.
        return Backoff(BACKOFF_START, max(BACKOFF_START, self.max_backoff)).delay(attempt + 1)

    # -- publishing ----------------------------------------------------------------------------------

    async def _publisher(self) -> None:
        attempt = 0
        while True:
            if not self._buffer and self.publisher.state != "down":
                self._wake.clear()
                await self._wake.wait()
                continue
            sending = bool(self._buffer)
            try:
                if sending:
                    await self.redis.publish(self.channel, self._buffer[0])
                else:
                    await self.redis.ping()  # down with nothing to send: health must see Redis come back
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.retried += sending
                self._down(self.publisher, exc)
                await self._wait_for_redis(attempt)
                attempt += 1
                continue
            if sending:
                self._buffer.popleft()
                self.published += 1
            attempt = 0
            self._up(self.publisher)
            if self._owe_resync and not self._buffer:  # after what was kept, so peers read past all of it
                self._owe_resync = False
                await self._publish_resync()

    async def _publish_resync(self) -> None:
        """Tell the other instances this one dropped events: they catch up from the database."""
        with contextlib.suppress(Exception):
            await self.redis.publish(self.channel, json.dumps({"o": self.instance, "resync": True}).encode())

    async def _wait_for_redis(self, attempt: int) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._backoff(attempt)):
                await self._redis_back.wait()
        self._redis_back.clear()

    # -- subscribing ---------------------------------------------------------------------------------

    async def _subscriber(self) -> None:
        attempt = 0
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None:
                            continue
                        kind = message.get("type")
                        if kind == "subscribe":
                            attempt = 0
                            self._subscribed()
                        elif kind == "message":
                            self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(self.subscriber, exc)
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _subscribed(self) -> None:
        was = self.subscriber.state
        self._up(self.subscriber)
        self._redis_back.set()
        if was == "down":
            self.reconnects += 1
        log.info("redis event bridge subscribed", extra={"reconnect": was == "down"})
        if self.state == "connected":
            self.bus.deliver_local(BRIDGE_TOPIC, BridgeState("up"))
        # Subscribed first, then caught up: whatever was committed before now is in the database, and
        # whatever comes after arrives here. (The first subscription too: events may have gone by meanwhile.)
        self.bus.deliver_local(RESYNC_TOPIC, Resync("reconnected"))

    def _deliver(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            if event["o"] == self.instance:
                return
            self.received += 1
            if event.get("resync"):
                self.bus.deliver_local(RESYNC_TOPIC, Resync("peer_dropped"))
                return
            self.bus.deliver_local(str(event["t"]), dict(event["p"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event from redis")

    # -- state ---------------------------------------------------------------------------------------

    def _up(self, side: _Side) -> None:
        before = self.state
        side.set("connected")
        if side is self.publisher and before == "down" and self.state == "connected":
            self.bus.deliver_local(BRIDGE_TOPIC, BridgeState("up"))

    def _down(self, side: _Side, exc: Exception) -> None:
        before = self.state
        side.last_error = self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if side.set("down"):
            log.warning("redis event bridge down: %s", self.last_error)
        if before != "down":
            self.bus.deliver_local(BRIDGE_TOPIC, BridgeState("down"))
