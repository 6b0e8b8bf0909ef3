"""Live events cross instances through a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from api import redis_bridge
from api.redis_bridge import RedisEventBridge
from core.events import BRIDGE_TOPIC, RESYNC_TOPIC, Event, EventBus
from tests.redis_helpers import PrivateRedis, TcpProxy
from tests.support.waiting import wait_for

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
            if bridge.state == "down":
                break
            await asyncio.sleep(0.02)
        assert bridge.state == "down"
        assert bridge.last_error
        async with bus.subscribe("t") as q:
            bus.publish("t", {"still": "works"})
            assert (await q.get())[1] == {"still": "works"}
    finally:
        await bridge.stop()


async def drain(queue: asyncio.Queue[Event], until: Any, timeout: float = 20.0) -> list[Event]:
    """Events from the queue until one satisfies `until` (all of them returned)."""
    got: list[Event] = []
    async with asyncio.timeout(timeout):
        while not got or not until(got[-1]):
            got.append(await queue.get())
    return got


async def test_publishes_during_a_partition_are_retried_then_delivered(private_redis: PrivateRedis) -> None:
    """An instance cut off from Redis keeps its events and sends them when it is back; health says so."""
    proxy = TcpProxy(private_redis.port)
    await proxy.start()
    bus_a, bus_b = EventBus(), EventBus()
    a = RedisEventBridge(bus_a, f"redis://127.0.0.1:{proxy.port}/0", channel="t", max_backoff=0.3)
    b = RedisEventBridge(bus_b, private_redis.url, channel="t", max_backoff=0.3)
    await a.start()
    await b.start()
    try:
        async with bus_a.subscribe(BRIDGE_TOPIC, RESYNC_TOPIC) as on_a, bus_b.subscribe("messages") as on_b:
            await wait_for(lambda: a.state == b.state == "connected")
            await proxy.cut()
            await drain(on_a, lambda e: e == (BRIDGE_TOPIC, {"state": "down"}))
            assert a.health()["state"] == "down"
            for i in range(3):
                bus_a.publish("messages", {"n": i})
            await wait_for(lambda: a.retried >= 1)
            assert b.state == "connected"  # only A is cut off
            await proxy.start()
            await drain(on_a, lambda e: e == (RESYNC_TOPIC, {"reason": "reconnected"}))
            got = [(await asyncio.wait_for(on_b.get(), 20))[1]["n"] for _ in range(3)]
            assert got == [0, 1, 2]
            await wait_for(lambda: a.state == "connected")
            health = a.health()
            assert health["publisher"]["state"] == health["subscriber"]["state"] == "connected"
            assert (health["dropped"], health["buffered"], health["reconnects"]) == (0, 0, 1)
            assert health["last_error"]  # kept for the record, while the state says it works again
    finally:
        await a.stop()
        await b.stop()
        await proxy.cut()


async def test_a_full_buffer_drops_the_oldest_and_peers_are_told_to_resync(private_redis: PrivateRedis) -> None:
    proxy = TcpProxy(private_redis.port)
    await proxy.start()
    bus_a, bus_b = EventBus(), EventBus()
    a = RedisEventBridge(bus_a, f"redis://127.0.0.1:{proxy.port}/0", channel="t", buffer_size=2, max_backoff=0.3)
    b = RedisEventBridge(bus_b, private_redis.url, channel="t", max_backoff=0.3)
    await a.start()
    await b.start()
    try:
        await wait_for(lambda: a.state == b.state == "connected")
        async with bus_b.subscribe("messages", RESYNC_TOPIC) as on_b:
            await proxy.cut()
            await wait_for(lambda: a.state == "down")
            for i in range(5):
                bus_a.publish("messages", {"n": i})
            assert a.dropped == 3
            await proxy.start()
            got = await drain(on_b, lambda e: e[0] == RESYNC_TOPIC)
            assert got == [("messages", {"n": 3}), ("messages", {"n": 4}), (RESYNC_TOPIC, {"reason": "peer_dropped"})]
    finally:
        await a.stop()
        await b.stop()
        await proxy.cut()


async def test_a_killed_redis_comes_back_without_a_restart(private_redis: PrivateRedis) -> None:
    """Both connections see Redis die and come back; the state is down in between and connected after."""
    bus = EventBus()
    bridge = RedisEventBridge(bus, private_redis.url, channel="t", max_backoff=0.3)
    await bridge.start()
    try:
        async with bus.subscribe(BRIDGE_TOPIC, RESYNC_TOPIC) as events:
            await drain(events, lambda e: e[0] == RESYNC_TOPIC)
            private_redis.kill()
            await drain(events, lambda e: e == (BRIDGE_TOPIC, {"state": "down"}))
            assert bridge.state == "down"
            bus.publish("messages", {"during": "outage"})
            await private_redis.start()
            # Subscribed again (catch up), and up once the publisher has sent what it kept. The two connections
            # come back in either order, so "up" may come before or after the resync: wait for both.
            seen: list[tuple[str, dict[str, object]]] = []

            def both(event: tuple[str, dict[str, object]]) -> bool:
                seen.append(event)
                return {(BRIDGE_TOPIC, "up"), (RESYNC_TOPIC, "reconnected")} <= {
                    (t, str(p.get("state", p.get("reason")))) for t, p in seen}

            got = await drain(events, both)
            assert (RESYNC_TOPIC, {"reason": "reconnected"}) in got
            assert (BRIDGE_TOPIC, {"state": "up"}) in got
            await wait_for(lambda: bridge.state == "connected" and bridge.published == 1)
            assert bridge.reconnects == 1
    finally:
        await bridge.stop()


async def test_stop_does_not_hang_on_a_task_that_will_not_end(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A task that swallows its cancellation (once seen: 540 s in stop()) costs stop() STOP_SECONDS, not ever."""
    monkeypatch.setattr(redis_bridge, "STOP_SECONDS", 0.2)
    bridge = RedisEventBridge(EventBus(), "redis://127.0.0.1:1/0", channel="t")
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # inside its sleep, where a cancellation is caught
    bridge._tasks = [task]
    async with asyncio.timeout(10):
        await bridge.stop()
    assert not task.done() and "still running" in caplog.text
    release.set()
    task.cancel()
    await task
