"""An axe-core pass over the console and the web-chat widget in Chromium (issue 16): no critical or serious
violation on any page (sign-in, inbox, ticket, board, intents, training, reports, problems, incidents, every admin
page; the widget closed and open), in English and Russian.

The database does not matter to markup: SQLite only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe

from tests.console.conftest import LiveServer, People
from tests.console.test_working_day_browser import DESKTOP, write
from tests.support.browser import needs_chromium

pytestmark = [needs_chromium, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

CONSOLE_PAGES = ("/console/inbox", "{ticket}", "/console/board", "/console/admin/intents", "/console/admin/training",
                 "/console/reports", "/console/problems", "/console/incidents", "/console/admin/users",
                 "/console/admin/queues", "/console/admin/canned", "/console/admin/tags", "/console/admin/routing",
                 "/console/admin/sla", "/console/admin/calendars", "/console/admin/channels",
                 "/console/admin/summary", "/console/admin/api-keys", "/console/admin/order-notices",
                 "/console/admin/audit")
# Markup is the same in both languages (texts aside): Russian checks the pages whose words are longest or that carry
# the language attribute first (sign-in before anyone is known, the widget), to keep the browser time small.
RUSSIAN_PAGES = ("/console/inbox", "{ticket}", "/console/admin/tags")
AXE = Axe()


async def violations(page: Any, where: str) -> list[str]:
    """The page's critical and serious axe violations, one line each (rule, impact, the first offending nodes)."""
    results = await AXE.run(page)
    found = []
    for v in results.response["violations"]:
        if v["impact"] in ("critical", "serious"):
            targets = "; ".join(" ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"])
                                for n in v["nodes"][:3])
            found.append(f"{where}: {v['impact']} {v['id']} ({len(v['nodes'])}): {targets}")
    return found


async def test_no_critical_accessibility_violations(browser: Any, live_server: LiveServer, people: People,
                                                    tmp_path: Path) -> None:
    number = await write(live_server, "a11y-1", "My internet is down", "a11y-cust")
    found: list[str] = []
    for locale, language in (("en-US", "en"), ("ru-RU", "ru")):
        context = await browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale=locale,
                                            bypass_csp=True)  # axe's script is injected into the page
        page = await context.new_page()
        await page.goto("/console/login")
        found += await violations(page, f"{language} login")
        await page.fill("#email", "admin@test.example")
        await page.fill("#password", "password-123")
        await page.press("#password", "Enter")
        await page.wait_for_url("**/console/inbox")
        if language == "ru":
            await page.select_option("#lang-select", "ru")  # submits itself
            await page.wait_for_selector('html[lang="ru"]')
        if language == "en":  # a tag on the ticket: its chip on the ticket page and in the inbox are checked too
            await page.goto(f"/console/tickets/{number}")
            await page.fill("#tag-name", "Повторное обращение")
            await page.click("#tag-form button[type=submit]")
            await page.wait_for_selector(".tag-list .tag")
        for url in CONSOLE_PAGES if language == "en" else RUSSIAN_PAGES:
            response = await page.goto(url.format(ticket=f"/console/tickets/{number}"))
            assert response is not None and response.status == 200, url
            found += await violations(page, f"{language} {url}")
        await page.goto("/demo")
        found += await violations(page, f"{language} widget closed")
        await page.click(".sbw-btn")
        await page.wait_for_selector(".sbw-panel.sbw-open")
        found += await violations(page, f"{language} widget open")
        await context.close()
    assert found == []
