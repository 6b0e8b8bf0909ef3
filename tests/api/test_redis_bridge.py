"""Live events cross instances through a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from api.redis_bridge import RedisEventBridge
from core.events import EventBus

REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_up() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except OSError:
        return False
    finally:
        await client.aclose()


async def test_events_fan_out_between_instances() -> None:
    if not await redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    channel = f"test:{uuid.uuid4().hex}"
    bus_a, bus_b = EventBus(), EventBus()
    a = RedisEventBridge(bus_a, REDIS_URL, channel=channel)
    b = RedisEventBridge(bus_b, REDIS_URL, channel=channel)
    await a.start()
    await b.start()
    try:
        for _ in range(100):
            if a.state == b.state == "connected":
                break
            await asyncio.sleep(0.02)
        async with bus_a.subscribe("messages") as on_a, bus_b.subscribe("messages", "outbox.queued") as on_b:
            bus_a.publish("messages", {"ticket_id": 7, "text": "привет"})
            bus_a.publish("outbox.queued", {"ticket_id": 7})  # local-only: never crosses
            topic, payload = await asyncio.wait_for(on_b.get(), timeout=5)
            assert (topic, payload) == ("messages", {"ticket_id": 7, "text": "привет"})
            # The publisher got its own event once, locally, not a second time from Redis.
            assert (await on_a.get())[1]["ticket_id"] == 7
            await asyncio.sleep(0.3)
            assert on_a.empty()
            assert on_b.empty()
    finally:
        await a.stop()
        await b.stop()


async def test_unreachable_redis_is_reported_not_fatal() -> None:
    bus = EventBus()
    bridge = RedisEventBridge(bus, "redis://127.0.0.1:1/0", channel="x")
    await bridge.start()
    try:
        for _ in range(100):
            if bridge.state == "error":
                break
            await asyncio.sleep(0.02)
        assert bridge.state == "error"
        assert bridge.last_error
        async with bus.subscribe("t") as q:
            bus.publish("t", {"still": "works"})
            assert (await q.get())[1] == {"still": "works"}
    finally:
        await bridge.stop()
