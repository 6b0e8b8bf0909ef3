"""The console in Chromium when live events were lost (issue 20): a resync refreshes the page's live part, and
the live indicator follows the Redis bridge."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events import BRIDGE_TOPIC, RESYNC_TOPIC
from tests.channels.webchat.test_catch_up import reply_without_event
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in


async def test_a_resync_shows_a_change_whose_event_was_lost(
    browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    context, page, _ = await new_page(browser, live_server)
    await sign_in(page, "agent@test.example")
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("r-1", "my internet is down", sender="c-1"))
        number = r.json()["ticket_number"]
    await page.goto(f"/console/tickets/{number}")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    bus = live_server.app.state.switchboard.bus

    bus.deliver_local(BRIDGE_TOPIC, {"state": "down"})
    await page.wait_for_selector('.live-indicator[data-live-state="offline"]')
    await reply_without_event(sessionmaker, number, "answered on another instance")
    assert await page.locator(".msg-agent").count() == 0
    bus.deliver_local(RESYNC_TOPIC, {"reason": "changed_while_down"})
    await page.wait_for_selector(".msg-agent >> text=answered on another instance", timeout=10_000)
    assert await page.get_attribute("body", "data-live-resyncs") == "1"
    bus.deliver_local(BRIDGE_TOPIC, {"state": "up"})
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    await context.close()
