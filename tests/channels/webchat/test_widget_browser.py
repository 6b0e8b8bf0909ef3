"""The widget in a real browser (Chromium via Playwright) on the demo page: chat, reload, history is there."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events import RESYNC_TOPIC
from core.tickets.models import Ticket
from core.users.models import Role
from tests.channels.webchat.conftest import Server, open_widget, say_hello
from tests.channels.webchat.test_catch_up import reply_without_event
from tests.conftest import make_user
from tests.support.browser import chromium, needs_chromium, shot


@needs_chromium
async def test_widget_on_demo_page(chat_server: Server, tmp_path: Path) -> None:
    async with chromium() as browser:
        page = await browser.new_page(locale="en-US", viewport={"width": 1200, "height": 760})
        errors = await open_widget(page, chat_server.url)
        await say_hello(page)
        await page.wait_for_selector(".sbw-quick button >> text=Talk to an operator")
        await page.wait_for_selector(".sbw-customer:not(.sbw-pending)")

        await page.reload()
        await page.wait_for_selector(".sbw-panel.sbw-open")  # stays open across reloads
        await page.wait_for_selector(".sbw-bot >> text=Hello! How can I help?", timeout=10_000)
        customer = await page.locator(".sbw-customer").all_inner_texts()
        assert customer == ["hello"]
        assert await page.locator(".sbw-bot").count() == 1
        # The bot's answer is still the latest message: its buttons come back with the history, and work.
        await page.click(".sbw-quick button >> text=Talk to an operator")
        await page.wait_for_selector(".sbw-bot >> text=Connecting you with an operator", timeout=10_000)
        assert await page.locator(".sbw-quick").count() == 0
        assert errors == []
        await shot(page, tmp_path, "webchat")  # docs/screenshots/webchat.png by `make screenshots`


@needs_chromium
async def test_widget_shows_missed_replies_after_a_catch_up_in_order(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A reply whose live event was lost appears without a reload once the server catches up, in its place."""
    _, token = await make_user(sessionmaker, Role.agent, "agent@test.example", "general")
    async with chromium() as browser:
        page = await browser.new_page(locale="en-US")
        errors = await open_widget(page, chat_server.url)
        await say_hello(page)
        async with sessionmaker() as session:
            ticket = (await session.scalars(select(Ticket))).one()
        await reply_without_event(sessionmaker, ticket.number, "the reply that was lost")
        async with httpx.AsyncClient(base_url=chat_server.url) as http:
            sent = await http.post(f"/tickets/{ticket.number}/reply", json={"text": "a later reply"},
                                   headers={"Authorization": f"Bearer {token}"})
            assert sent.status_code == 201, sent.text
        await page.wait_for_selector(".sbw-agent >> text=a later reply", timeout=10_000)
        assert await page.locator(".sbw-agent >> text=the reply that was lost").count() == 0

        chat_server.app.state.switchboard.bus.deliver_local(RESYNC_TOPIC, {"reason": "reconnected"})
        await page.wait_for_selector(".sbw-agent >> text=the reply that was lost", timeout=10_000)
        bubbles = await page.locator(".sbw-msg").all_inner_texts()
        agents = [b for b in bubbles if "reply" in b]
        assert [b.split("\n")[-1] for b in agents] == ["the reply that was lost", "a later reply"]
        assert errors == []
