"""Web-chat limits: sockets opened per client address, messages per socket; time from a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import ManualClock
from tests.channels.webchat.conftest import Client, Server, open_widget, start_server
from tests.support.browser import chromium, needs_chromium


@pytest.fixture
async def limited_server(db_url: str, db_engine: AsyncEngine, tmp_path: Path, clock: ManualClock
                         ) -> AsyncIterator[Server]:
    info = await start_server(db_url, tmp_path, clock=clock, connection_burst=2, connections_per_second=0.5,
                              app_settings={"trusted_proxies": ["127.0.0.1"]})
    yield info
    await info.stop()


async def refused(url: str, **headers: str) -> tuple[dict[str, Any], int, str]:
    """Open a socket expected to be refused: the error frame, the close code and reason."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        frame = Client(ws)
        error = await frame.next("error")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return error, closed.value.rcvd.code, closed.value.rcvd.reason


async def test_sockets_per_address_are_limited(limited_server: Server, clock: ManualClock) -> None:
    first, ready, _ = await Client.connect(limited_server.ws_url)
    second, _, _ = await Client.connect(limited_server.ws_url)
    assert ready["type"] == "ready"
    error, code, reason = await refused(limited_server.ws_url)
    assert error["code"] == "too_many_connections" and error["retry_after"] == 2
    assert code == 4429 and "retry_after=2" in reason
    # Another client behind the trusted proxy (127.0.0.1 here) has its own allowance.
    ws = await websockets.connect(limited_server.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.8"})
    other = Client(ws)
    await other.send({"type": "auth"})
    assert (await other.next("ready"))["type"] == "ready"
    clock.advance(2)
    third, ready, _ = await Client.connect(limited_server.ws_url)
    assert ready["type"] == "ready"
    for c in (first, second, third, other):
        await c.close()


async def test_messages_per_socket_follow_the_clock(limited_server: Server, clock: ManualClock) -> None:
    client, _, _ = await Client.connect(limited_server.ws_url)
    for i in range(5):  # the burst (5), then 2 a second
        assert (await client.say(f"m{i}", f"complaint {i}"))["type"] == "ack"
    await client.send({"type": "message", "client_id": "m5", "text": "one more"})
    limited = await client.next("error")
    assert limited["code"] == "rate_limited" and limited["client_id"] == "m5" and limited["retry_after"] == 0.5
    clock.advance(0.5)
    assert (await client.say("m5", "one more"))["type"] == "ack"
    await client.close()


@needs_chromium
async def test_the_widget_says_why_and_reconnects_after_the_wait(limited_server: Server, clock: ManualClock) -> None:
    held = [(await Client.connect(limited_server.ws_url))[0] for _ in range(2)]  # the address's allowance
    async with chromium() as browser:
        page = await browser.new_page(locale="ru-RU")
        errors = await open_widget(page, limited_server.url)
        await page.wait_for_selector(
            ".sbw-err >> text=Слишком много подключений из вашей сети. Повторное подключение через 2 с",
            timeout=10_000)
        clock.advance(2)  # the widget waits the 2 s it was told, then connects
        await page.wait_for_selector(".sbw-system >> text=Здравствуйте!", timeout=15_000)
        assert errors == []
    for c in held:
        await c.close()
