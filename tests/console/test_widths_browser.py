"""Every width and language of issue 16's "Done when" in one pass: 1440 px and a 390x844 phone, English and
Russian, a supervisor's day through the pages (inbox with tags, a ticket tagged from its panel, the tag list, the
board, reports) and the customer's widget (closed and open) on the demo page; then 768 and 1920 px for overflow.
Nothing sticks out of the screen, the texts are the language's, and each combination leaves screenshots
(docs/screenshots by `make screenshots`).

One server and one browser; each combination is a new browser context. SQLite only: layout does not depend on the
database (the flows themselves are tested on both in the HTTP tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.users import service as users
from tests.console.conftest import LiveServer, People
from tests.console.test_working_day_browser import DESKTOP, PHONE, overflow, write
from tests.support.browser import needs_chromium, shot

pytestmark = [needs_chromium, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

TEXTS = {  # a few words each page shows in each language
    "en": {"inbox": "Inbox", "tags": "Tags", "widget": "Chat with us", "added": "added"},
    "ru": {"inbox": "Входящие", "tags": "Метки", "widget": "Напишите нам", "added": "добавлена"},
}


async def test_each_width_and_language(browser: Any, live_server: LiveServer, people: People,
                                       sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    number = await write(live_server, "wl-1", "My internet is down", "wl-cust-1")
    await write(live_server, "wl-2", "I want an operator please", "wl-cust-2")
    errors: list[Any] = []
    for language, locale in (("en", "en-US"), ("ru", "ru-RU")):
        async with sessionmaker() as session, session.begin():
            (await users.get(session, people.supervisor.id)).language = language
        words = TEXTS[language]
        for width, viewport in (("1440", DESKTOP), ("390", PHONE)):
            phone = viewport is PHONE
            context = await browser.new_context(base_url=live_server.url, viewport=viewport, locale=locale,
                                                is_mobile=phone, has_touch=phone)
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(exc))
            where = f"{width}-{language}"
            await page.goto("/console/login")
            assert await page.locator("html").get_attribute("lang") == language
            await page.fill("#email", "super@test.example")
            await page.fill("#password", "password-123")
            await page.press("#password", "Enter")
            await page.wait_for_url("**/console/inbox")

            # The ticket: tagged from its panel (the tag named in the page's language), the chip shown.
            tag = f"{words['tags']} {width}"
            await page.goto(f"/console/tickets/{number}")
            await page.fill("#tag-name", tag)
            await page.click("#tag-form button[type=submit]")
            await page.wait_for_selector(f'.tag-list [data-tag-name="{tag}"]')
            assert words["added"] in await page.inner_text(".flash")
            assert await overflow(page) <= 0, where
            await shot(page, tmp_path, f"ticket-{where}")

            # The inbox: its tags on the row, filtered by one through the chip, still inside the screen.
            await page.goto("/console/inbox")
            assert words["inbox"] in await page.inner_text("h1")
            # (Followed, not clicked: a live refresh of the rows may replace the chip under the pointer.)
            href = await page.get_attribute(f'tr[data-ticket="{number}"] .row-tags [data-tag-name="{tag}"]', "href")
            assert href is not None and "tag=" in href
            await page.goto(href)
            assert await page.locator("tr[data-ticket]").count() == 1
            assert await overflow(page) <= 0, where
            await shot(page, tmp_path, f"inbox-{where}")

            for url in ("/console/admin/tags", "/console/board", "/console/reports"):
                response = await page.goto(url)
                assert response is not None and response.status == 200, url
                assert await overflow(page) <= 0, (where, url)
            await page.goto("/console/admin/tags")
            assert words["tags"] in await page.inner_text("main h2")
            if where == "1440-en":
                await shot(page, tmp_path, "admin-tags")

            # The customer's widget on the demo page: closed, then open (full screen on the phone).
            await page.goto("/demo")
            assert await page.inner_text(".sbw-btn") == words["widget"]
            assert await overflow(page) <= 0, where
            await page.click(".sbw-btn")
            await page.wait_for_selector(".sbw-panel.sbw-open")
            panel = await page.locator(".sbw-panel").bounding_box()
            assert panel is not None
            if phone:
                assert panel == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
            else:
                assert panel["x"] + panel["width"] <= DESKTOP["width"] and panel["width"] < DESKTOP["width"] / 2
            await shot(page, tmp_path, f"webchat-{where}")
            await context.close()

    # The widths between and beyond (a tablet, a wide monitor): the same pages, nothing sticking out.
    for viewport in ({"width": 768, "height": 1024}, {"width": 1920, "height": 1080}):
        context = await browser.new_context(base_url=live_server.url, viewport=viewport, locale="ru-RU")
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(exc))
        await page.goto("/console/login")
        await page.fill("#email", "super@test.example")
        await page.fill("#password", "password-123")
        await page.press("#password", "Enter")
        await page.wait_for_url("**/console/inbox")
        for url in ("/console/inbox", f"/console/tickets/{number}", "/console/admin/tags", "/console/board",
                    "/console/reports", "/demo"):
            response = await page.goto(url)
            assert response is not None and response.status == 200, url
            assert await overflow(page) <= 0, (viewport["width"], url)
        await context.close()
    assert errors == []
