"""Fans live events out across instances through Redis pub/sub (web-chat pushes, console updates).

Each instance publishes its bus events to one Redis channel with its own id and re-delivers other
instances' events to its local subscribers. Events are notifications, not data: losing one during a Redis
outage costs a live update (pages and widgets reload history on reconnect), never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from redis.asyncio import Redis

from core.events import EventBus

log = logging.getLogger(__name__)
CHANNEL = "switchboard:events"
# Topics that only make sense in the instance that raised them.
LOCAL_ONLY = frozenset({"outbox.queued"})


class RedisEventBridge:
    def __init__(self, bus: EventBus, url: str, *, channel: str = CHANNEL) -> None:
        self.bus = bus
        self.redis: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.channel = channel
        self.instance = uuid.uuid4().hex
        self.state = "starting"
        self.last_error: str | None = None
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(10_000)
        self._tasks: list[asyncio.Task[None]] = []

    def forward(self, topic: str, payload: dict[str, Any]) -> None:
        if topic in LOCAL_ONLY:
            return
        data = json.dumps({"o": self.instance, "t": topic, "p": payload}, default=str).encode()
        with contextlib.suppress(asyncio.QueueFull):
            self._outgoing.put_nowait(data)

    async def start(self) -> None:
        self.bus.forwarders.append(self.forward)
        self._tasks = [asyncio.create_task(self._publisher(), name="redis-publish"),
                       asyncio.create_task(self._subscriber(), name="redis-subscribe")]

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.bus.forwarders.remove(self.forward)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.redis.aclose()

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "last_error": self.last_error, "instance": self.instance}

    async def _publisher(self) -> None:
        while True:
            data = await self._outgoing.get()
            try:
                await self.redis.publish(self.channel, data)
            except Exception as exc:
                self._error(exc)
                await asyncio.sleep(1)

    async def _subscriber(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.state = "connected"
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._error(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    def _deliver(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            if event["o"] != self.instance:
                self.bus.deliver_local(str(event["t"]), dict(event["p"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event from redis")

    def _error(self, exc: Exception) -> None:
        self.state = "error"
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("redis event bridge: %s", self.last_error)
