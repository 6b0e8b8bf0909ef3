"""Collision control in real browsers (Chromium via Playwright) against a real uvicorn server: two agents on one
ticket see each other viewing and typing, live, and the agent whose ticket is taken over is told on their page."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.users.models import Role
from tests.conftest import REST_HEADERS, make_user, rest_message
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in
from tests.support.browser import needs_chromium


@needs_chromium
async def test_two_agents_see_each_other_viewing_and_typing_and_a_take_over_tells_the_holder(
    browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("pb-1", "Интернет не работает", sender="c-pb"))
        number = r.json()["ticket_number"]
    mine, me, my_dialogs = await new_page(browser, live_server)
    annas, anna, anna_dialogs = await new_page(browser, live_server)
    errors: list[Any] = []
    for page in (me, anna):
        page.on("pageerror", lambda exc: errors.append(exc))
    try:
        await sign_in(me, "agent@test.example")
        await sign_in(anna, "anna@test.example")
        await me.goto(f"/console/tickets/{number}")
        await me.wait_for_selector('.live-indicator[data-live-state="live"]')
        await anna.goto(f"/console/tickets/{number}")

        # Each sees the other, whoever came first.
        await me.wait_for_selector("#presence li >> text=anna is viewing", timeout=10_000)
        await anna.wait_for_selector("#presence li >> text=agent is viewing", timeout=10_000)
        assert await me.locator("#presence li").count() == 1  # never oneself

        await anna.type("#reply-text", "Перезагрузите")
        typing = me.locator('#presence li[data-state="typing"]')
        await typing.wait_for(timeout=10_000)
        assert await typing.inner_text() == "anna is typing a reply…"
        await anna.type("#note-text", "check the line")
        await me.wait_for_selector('#presence li[data-state="typing"] >> text=anna is writing a note…',
                                   timeout=10_000)

        # anna takes the ticket; my page still offers a plain "Take": taking asks, naming her, and she is told.
        await anna.click("#take-button")
        await anna.wait_for_selector("#assignee >> text=anna")
        await me.click("#take-button")
        await me.wait_for_selector("[data-collision=take] >> text=anna is working on this ticket. Take it over?")
        await me.click("#confirm-take-over")
        await me.wait_for_url(f"**/console/tickets/{number}")
        notice = anna.locator(".takeover-notice")
        await notice.wait_for(timeout=10_000)
        assert await notice.inner_text() == f"agent took over {number}, which you held."

        # anna leaves: she is gone from my page at once, not after the timeout.
        await me.wait_for_selector("#presence li >> text=anna is viewing", timeout=10_000)
        await anna.goto("/console/inbox")
        await me.wait_for_selector("#presence", state="hidden", timeout=10_000)
        assert errors == [] and my_dialogs == [] and anna_dialogs == []
    finally:
        await mine.close()
        await annas.close()
