"""The widget on a phone (390x844, Russian) and a desktop (1440 px, English): full screen, keyboard, unread replies.

One server and one browser for the module; each page load checks many things.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.demo import DEMO_ORDER
from core.tickets.models import Ticket
from core.users.models import Role
from tests.channels.webchat.conftest import Server
from tests.conftest import make_user
from tests.support.browser import chromium, needs_chromium, shot

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


async def reply(server: Server, token: str, number: str, text: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        sent = await http.post(f"/tickets/{number}/reply", json={"text": text},
                               headers={"Authorization": f"Bearer {token}"})
        assert sent.status_code == 201, sent.text


async def overflow(page: Any) -> int:
    """How many pixels the page is wider than the screen (0: nothing sticks out)."""
    return int(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


async def chat_once(page: Any, server: Server, sessionmaker: async_sessionmaker[AsyncSession], greeting: str,
                    answer: str) -> str:
    """Open the widget from the keyboard, say hello, close it with Escape; returns the ticket number."""
    await page.goto(f"{server.url}/demo")
    await page.focus(".sbw-btn")
    assert await page.get_attribute(".sbw-btn", "aria-expanded") == "false"
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".sbw-panel.sbw-open")
    assert await page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    await page.keyboard.type(greeting)
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f".sbw-bot >> text={answer}", timeout=10_000)
    await page.wait_for_selector(".sbw-customer:not(.sbw-pending)")
    # Tab stays inside the open chat (from the textarea: the send button, then round to the close button).
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.closest('.sbw-panel') !== null")
    await page.keyboard.press("Escape")
    await page.wait_for_selector(".sbw-panel", state="hidden")
    assert await page.evaluate("document.activeElement.classList.contains('sbw-btn')")
    assert await page.get_attribute(".sbw-btn", "aria-expanded") == "false"
    assert not await page.is_visible(".sbw-badge")  # the bot's answer was read while open
    async with sessionmaker() as session:
        tickets = (await session.scalars(select(Ticket).order_by(Ticket.id.desc()))).all()
    return tickets[0].number


@needs_chromium
async def test_widget_on_a_phone_and_a_desktop_with_unread_replies(
    chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    _, token = await make_user(sessionmaker, Role.agent, "anna@test.example", "general")
    async with chromium() as browser:
        # --- a phone, in Russian -----------------------------------------------------------------------------
        context = await browser.new_context(locale="ru-RU", viewport=PHONE, is_mobile=True, has_touch=True)
        page = await context.new_page()
        errors: list[Any] = []
        page.on("pageerror", lambda exc: errors.append(exc))
        await page.goto(f"{chat_server.url}/demo")
        # The demo page fits the phone, its chat button is on screen, and it suggests an order the demo holds.
        assert await overflow(page) <= 0
        box = await page.locator(".sbw-btn").bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] + box["height"] <= PHONE["height"]
        assert DEMO_ORDER in await page.inner_text(".hero")
        assert await page.inner_text(".sbw-btn") == "Напишите нам"

        number = await chat_once(page, chat_server, sessionmaker, "здравствуйте", "Здравствуйте! Чем помочь?")
        await reply(chat_server, token, number, "Перезагрузите роутер, пожалуйста")
        await page.wait_for_selector(".sbw-badge.sbw-has", timeout=10_000)
        assert await page.inner_text(".sbw-badge") == "1"
        preview = await page.inner_text(".sbw-preview")
        assert "anna" in preview and "Перезагрузите роутер" in preview
        assert await page.get_attribute(".sbw-btn", "aria-label") == "Напишите нам. Непрочитанных сообщений: 1"
        await reply(chat_server, token, number, "И проверьте кабель")
        await page.wait_for_function("document.querySelector('.sbw-badge').textContent === '2'", timeout=10_000)
        assert "И проверьте кабель" in await page.inner_text(".sbw-preview")
        preview_box = await page.locator(".sbw-preview").bounding_box()
        assert preview_box is not None and preview_box["x"] + preview_box["width"] <= PHONE["width"]
        assert await overflow(page) <= 0
        await shot(page, tmp_path, "webchat-phone-unread")

        # Unread replies survive a reload while the chat stays closed.
        await page.reload()
        await page.wait_for_selector(".sbw-badge.sbw-has", timeout=10_000)
        assert await page.inner_text(".sbw-badge") == "2"

        # The preview opens the chat: full screen on the phone, the replies there, the count gone.
        await page.click(".sbw-preview")
        await page.wait_for_selector(".sbw-panel.sbw-open")
        panel = await page.locator(".sbw-panel").bounding_box()
        assert panel == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
        await page.wait_for_selector(".sbw-agent >> text=И проверьте кабель")
        assert not await page.is_visible(".sbw-badge")
        assert not await page.is_visible(".sbw-preview")
        assert await overflow(page) <= 0
        await shot(page, tmp_path, "webchat-phone")
        # Read replies stay read after a reload with the chat closed.
        await page.click(".sbw-x")
        await page.reload()
        await page.wait_for_selector(".sbw-btn")
        # The history arrives over the socket into the closed chat; none of it may light the badge.
        await page.wait_for_function("document.querySelectorAll('.sbw-agent').length === 2", timeout=10_000)
        assert not await page.is_visible(".sbw-badge")
        assert errors == []
        await context.close()

        # --- a desktop, in English: the floating card, the same badge and preview ---------------------------
        context = await browser.new_context(locale="en-US", viewport=DESKTOP)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(exc))
        number = await chat_once(page, chat_server, sessionmaker, "hello", "Hello! How can I help?")
        await reply(chat_server, token, number, "Please restart the router")
        await page.wait_for_selector(".sbw-badge.sbw-has", timeout=10_000)
        assert await page.get_attribute(".sbw-btn", "aria-label") == "Chat with us. Unread messages: 1"
        assert "Please restart the router" in await page.inner_text(".sbw-preview")
        await page.focus(".sbw-btn")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".sbw-panel.sbw-open")
        panel = await page.locator(".sbw-panel").bounding_box()
        assert panel is not None and panel["width"] == 360 and panel["x"] > DESKTOP["width"] / 2
        assert not await page.is_visible(".sbw-badge")
        assert await overflow(page) <= 0
        assert errors == []
        await context.close()
