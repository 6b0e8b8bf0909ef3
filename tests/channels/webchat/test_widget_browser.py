"""The widget in a real browser (Chromium via Playwright) on the demo page: chat, reload, history is there."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.customers.models import ChannelIdentity, Customer
from core.events import RESYNC_TOPIC
from core.tickets.models import Ticket
from core.users.models import Role
from tests.channels.webchat.conftest import Server, open_widget, say_hello
from tests.channels.webchat.test_catch_up import reply_without_event
from tests.conftest import make_user
from tests.support.browser import chromium, needs_chromium, shot


@needs_chromium
async def test_widget_on_demo_page(chat_server: Server, tmp_path: Path,
                                   sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with chromium() as browser:
        page = await browser.new_page(locale="en-US", viewport={"width": 1200, "height": 760},
                                      timezone_id="Europe/Moscow")
        errors = await open_widget(page, chat_server.url)
        await say_hello(page)
        # The widget said where the visitor came from (host and path) and the browser's zone.
        async with sessionmaker() as session:
            origin, zone = (await session.execute(
                select(ChannelIdentity.origin, Customer.time_zone).join(Customer)
                .where(ChannelIdentity.channel == "webchat"))).one()
        assert (origin, zone) == (f"127.0.0.1:{chat_server.port}/demo", "Europe/Moscow")
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


@needs_chromium
async def test_widget_shows_the_agent_typing_and_their_name_on_the_reply(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The agent types in the console (another browser): the widget says "Anna is typing…", then shows the reply
    under her display name; an internal note shows the visitor nothing."""
    from core.users import service as users

    user, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "general")
    async with sessionmaker() as session, session.begin():
        anna = await users.get(session, user.id)
        anna.name, anna.display_name = "Anna Petrova", None  # shown as "Anna", the first word
    async with chromium() as browser:
        page = await browser.new_page(locale="en-US")
        errors = await open_widget(page, chat_server.url)
        await say_hello(page)
        async with sessionmaker() as session:
            ticket = (await session.scalars(select(Ticket))).one()

        console = await (await browser.new_context(base_url=chat_server.url, locale="en-US")).new_page()
        await console.goto("/console/login")
        await console.fill("#email", "anna@test.example")
        await console.fill("#password", "password-123")
        await console.press("#password", "Enter")
        await console.wait_for_url("**/console/inbox")
        await console.goto(f"/console/tickets/{ticket.number}")
        await console.wait_for_selector('.live-indicator[data-live-state="live"]')

        await console.type("#note-text", "internal: check the line")
        await console.type("#reply-text", "Please restart the router")
        await page.wait_for_selector(".sbw-typing >> text=Anna is typing…", timeout=10_000)
        await console.keyboard.press("Control+Enter")
        await console.wait_for_url(f"**/console/tickets/{ticket.number}")
        reply = page.locator(".sbw-agent").last
        await reply.wait_for(timeout=10_000)
        assert await reply.locator(".sbw-who").inner_text() == "Anna"
        assert "Please restart the router" in await reply.inner_text()
        assert await page.locator(".sbw-typing").inner_text() == ""  # the reply ends the typing notice
        assert "internal" not in await page.locator(".sbw-panel").inner_text()
        assert errors == []
