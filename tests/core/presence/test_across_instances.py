"""Presence and agents' typing reach the other instances through the Redis bridge (a private redis-server)."""

from __future__ import annotations

import asyncio

from api.redis_bridge import RedisEventBridge
from core.clock import ManualClock
from core.events import EventBus, Topic
from core.presence.service import PresenceRelay
from tests.core.presence.test_service import ANNA, line
from tests.redis_helpers import PrivateRedis
from tests.support.waiting import wait_for


async def test_presence_and_typing_announced_on_one_instance_reach_the_other(private_redis: PrivateRedis) -> None:
    bus_a, bus_b = EventBus(), EventBus()
    a = RedisEventBridge(bus_a, private_redis.url, channel="t")
    b = RedisEventBridge(bus_b, private_redis.url, channel="t")
    await a.start()
    await b.start()
    try:
        await wait_for(lambda: a.state == b.state == "connected", "both bridges connected")
        relay = PresenceRelay(bus_a, ManualClock())
        async with bus_b.subscribe(Topic.PRESENCE, Topic.TYPING) as on_b:
            relay.announce(7, ANNA, "viewing")
            relay.announce(7, ANNA, "typing", "reply", line())
            got = [await asyncio.wait_for(on_b.get(), 10) for _ in range(3)]
        assert got == [
            (Topic.PRESENCE, {"ticket_id": 7, "user_id": 3, "name": "Anna Petrova", "state": "viewing",
                              "what": None}),
            (Topic.PRESENCE, {"ticket_id": 7, "user_id": 3, "name": "Anna Petrova", "state": "typing",
                              "what": "reply"}),
            (Topic.TYPING, {"channel": "webchat", "direction": "outbound", "thread_key": "visitor-1",
                            "active": True, "author": "Anna"}),
        ]
    finally:
        await a.stop()
        await b.stop()
