"""In a real browser: the console page beats its heartbeat, the escalated ticket lands in the online agent's
inbox by itself, and the header's away toggle stops new work."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.users import service as users
from core.users.models import AssignmentMode
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in


async def test_an_online_agent_gets_the_escalation_live_and_away_stops_new_work(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        (await users.team_by_slug(session, "technical")).assignment_mode = AssignmentMode.round_robin
        (await users.get(session, people.supervisor.id)).team_id = None  # the agent alone serves the queue
    context, page, _ = await new_page(browser, live_server)
    await sign_in(page, "agent@test.example")
    async with page.expect_response(lambda r: r.url.endswith("/console/presence/heartbeat")) as beat:
        await page.goto("/console/inbox?view=mine")
    assert (await beat.value).status == 204
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    assert await page.locator("tr[data-ticket]").count() == 0

    async with httpx.AsyncClient(base_url=live_server.url) as api:
        r = await api.post("/channels/rest/messages", headers=REST_HEADERS,
                           json=rest_message("m-1", "my internet is down", sender="c-1"))
        number = r.json()["ticket_number"]
    await page.wait_for_selector(f'tr[data-ticket="{number}"]', timeout=30_000)  # assigned, and shown live

    await page.click("#away-form button")
    await page.wait_for_selector("#away-form .badge")
    async with sessionmaker() as session:
        assert (await users.get(session, people.agent.id)).away is True
    assert "I'm back" in await page.locator("#away-form button").inner_text()
    await context.close()
