"""The console for a working day in a real browser (issue 16), at 1440 px in English and on a 390x844 phone in
Russian: unread markers, notifications, shortcuts, "/" canned responses, the language switch keeping the page,
bulk actions, layouts without overflow, error pages. One server and one browser; many checks per page load."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.canned import service as canned_service
from core.canned.schemas import CannedResponseCreate
from core.users import service as users
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import LiveServer, People
from tests.support.browser import needs_chromium, shot
from tests.support.waiting import wait_for

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# Desktop notifications cannot be shown in a headless browser: the page's Notification is replaced by one that
# records what would have been shown (permission as the browser context grants it).
RECORD_NOTIFICATIONS = """
window.__shown = [];
(function () {
  function Recorded(title, options) { window.__shown.push({ title: title, tag: (options || {}).tag }); }
  Recorded.permission = "granted";
  Recorded.requestPermission = function () { return Promise.resolve("granted"); };
  window.Notification = Recorded;
})();
"""


async def write(server: LiveServer, ext: str, text: str, sender: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/channels/rest/messages", headers=REST_HEADERS,
                            json=rest_message(ext, text, sender=sender))
        assert r.status_code in (200, 201, 202), r.text
        return str(r.json()["ticket_number"])


async def sign_in(page: Any, email: str) -> None:
    await page.goto("/console/login")
    await page.fill("#email", email)
    await page.fill("#password", "password-123")
    await page.press("#password", "Enter")
    await page.wait_for_url("**/console/inbox")


async def until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Wait for a condition on the page (page.wait_for_function evaluates strings, which the console's CSP
    forbids)."""
    async with asyncio.timeout(timeout):
        while not await page.evaluate(f"() => Boolean({expression})"):
            await asyncio.sleep(0.05)


async def overflow(page: Any) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


async def tables_overflowing(page: Any) -> list[str]:
    """Tables wider than their card, and headers whose words do not fit their cell (clipped or broken)."""
    return list(await page.evaluate("""() => {
      const bad = [];
      document.querySelectorAll('main table').forEach((t, i) => {
        const box = t.closest('.card, .table-wrap') || t.parentElement;
        if (t.getBoundingClientRect().width > box.clientWidth + 1) bad.push('table ' + i);
        t.querySelectorAll('th').forEach(th => { if (th.scrollWidth > th.clientWidth + 1) bad.push(th.textContent); });
      });
      return bad;
    }"""))


@needs_chromium
async def test_console_working_day(browser: Any, live_server: LiveServer, people: People,
                                   sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    async with sessionmaker() as session, session.begin():
        admin = await users.get(session, people.admin.id)
        await canned_service.create(session, CannedResponseCreate(
            title="Restart the router", shortcut="restart",
            body="Hello {{customer_name}}, please restart the router."), admin)
        await canned_service.create(session, CannedResponseCreate(
            title="Thanks", shortcut="thanks", body="Thank you!"), admin)
    first = await write(live_server, "w-1", "My internet is down", "cust-1")
    second = await write(live_server, "w-2", "I want an operator please", "cust-2")
    errors: list[Any] = []

    # --- an agent at 1440 px, in English ------------------------------------------------------------------
    context = await browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-US")
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(exc))
    await sign_in(page, "agent@test.example")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    assert await page.get_attribute("link[rel=icon]", "href") == "/console/static/favicon.svg"
    # Both tickets are new to this agent; each row shows its latest message and why the bot gave it to people.
    assert await page.locator("tr.unread").count() == 2
    row = page.locator(f'tr[data-ticket="{second}"]')
    assert "Bot:" in await row.locator(".latest").inner_text()
    assert await row.locator(".badge.reason").get_attribute("data-reason") == "handoff"
    assert await overflow(page) <= 0

    # Notifications: sound and desktop notifications are switched on by a click (the permission asked there).
    await page.click("#notify-toggle")
    await page.wait_for_selector('#notify-toggle[aria-pressed="true"]')
    await page.click("#sound-toggle")
    await page.wait_for_selector('#sound-toggle[aria-pressed="true"]')
    # The agent is in another window: a customer writes in their queue; the title counts it, a sound plays,
    # and a notification names the ticket.
    await page.evaluate("document.hasFocus = () => false")
    sounds = int(await page.get_attribute("body", "data-sounds") or 0)
    assert await write(live_server, "w-3", "still no internet", "cust-1") == first
    await until(page, "document.title.startsWith('(1) ')")
    shown = await page.evaluate("window.__shown")
    assert shown == [{"title": f"{first}: the customer wrote", "tag": f"switchboard-{first}"}]
    assert int(await page.get_attribute("body", "data-sounds") or 0) > sounds
    # Back at the page: the count goes.
    await page.evaluate("delete document.hasFocus; window.dispatchEvent(new Event('focus'))")
    await until(page, "!document.title.startsWith('(')")

    # The shortcut sheet, and j/k through the list.
    await page.keyboard.press("?")
    sheet = page.locator("dialog#shortcuts")
    await sheet.wait_for(state="visible")
    assert "Keyboard shortcuts" in await sheet.inner_text() and "assign the ticket to me" in await sheet.inner_text()
    await page.keyboard.press("Escape")
    await sheet.wait_for(state="hidden")
    rows = await page.locator("tr[data-ticket]").evaluate_all("rs => rs.map(r => r.dataset.ticket)")
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    assert await page.locator("tr.selected").get_attribute("data-ticket") == rows[0]
    await page.keyboard.press("o")
    await page.wait_for_url(f"**/console/tickets/{rows[0]}")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')

    # On the ticket: "a" assigns it to me, "r" goes to the reply, "/re" offers the canned response.
    await page.keyboard.press("a")
    await page.wait_for_selector("#take-button", state="detached")
    assert await page.inner_text("#assignee") == people.agent.name
    await page.keyboard.press("r")
    assert await page.evaluate("document.activeElement.id") == "reply-text"
    await page.keyboard.type("Hi! /re")
    menu = page.locator("#canned-menu")
    await menu.wait_for(state="visible")
    assert await menu.locator("li[role=option]").all_inner_texts() == ["Restart the router (/restart)"]
    await page.keyboard.press("Enter")
    await menu.wait_for(state="hidden")
    assert await page.input_value("#reply-text") == "Hi! Hello Test Customer, please restart the router."
    await page.keyboard.type(" /zzz")
    await menu.wait_for(state="visible")
    assert "No canned response matches" in await menu.inner_text()
    await page.keyboard.press("Escape")
    await menu.wait_for(state="hidden")
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.press("s")
    assert await page.evaluate("document.activeElement.id") == "reply-status"
    await page.focus("#reply-text")
    await page.keyboard.press("Control+Enter")
    await page.wait_for_selector(".msg >> text=please restart the router", timeout=10_000)

    # The language switch keeps the page (the ticket, not the inbox).
    ticket_url = page.url
    await page.select_option("#lang-select", "ru")
    await page.wait_for_selector('html[lang="ru"]')
    assert page.url == ticket_url
    assert await page.locator("html").get_attribute("lang") == "ru"
    await page.select_option("#lang-select", "en")
    await page.wait_for_selector('html[lang="en"]')
    assert page.url == ticket_url

    # Back in the inbox the ticket just read is no longer new; a mistyped address is a console page.
    await page.keyboard.press("u")
    await page.wait_for_url("**/console/inbox")
    assert await page.locator(f'tr[data-ticket="{rows[0]}"].unread').count() == 0
    await page.goto("/console/inbxo")
    assert "There is no such page in the console" in await page.inner_text("main")
    assert await page.locator("header.topbar").count() == 1
    assert errors == []
    await context.close()

    # --- a supervisor on a phone, in Russian ----------------------------------------------------------------
    context = await browser.new_context(base_url=live_server.url, viewport=PHONE, locale="ru-RU", is_mobile=True,
                                        has_touch=True)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(exc))
    await page.goto("/console/login")
    assert await page.locator("html").get_attribute("lang") == "ru"  # the browser's language, before signing in
    assert "Вход" in await page.inner_text("main") or "Войти" in await page.inner_text("main")
    await page.fill("#email", "super@test.example")
    await page.fill("#password", "password-123")
    await page.press("#password", "Enter")
    await page.wait_for_url("**/console/inbox")
    async with sessionmaker() as session, session.begin():
        boss = await users.get(session, people.supervisor.id)
        boss.language = "ru"
    await page.reload()
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    # The inbox is a list of cards that fits the phone, the filters folded away above it.
    assert await overflow(page) <= 0
    assert await page.locator("form.filters").is_hidden()
    assert await page.locator("table.inbox-table thead").is_hidden()
    # (Waited for: a live refresh may replace the rows between finding a card and measuring it.)
    card = await wait_for(lambda: page.locator("tr[data-ticket]").first.bounding_box(), what="an inbox card's box")
    assert card["width"] <= PHONE["width"] and card["height"] > 60
    await shot(page, tmp_path, "console-inbox-phone")
    # Bulk: tick both, reassign to the agent; the ticks survive a live refresh in between.
    for number in (first, second):
        await page.check(f'tr[data-ticket="{number}"] .bulk-pick')
    await page.wait_for_selector('body[data-picked="2"]')
    refreshed = await page.get_attribute("body", "data-live-refreshed")
    await write(live_server, "w-4", "hello again", "cust-2")
    # As a JavaScript literal: null when the page has not refreshed yet (Python's repr gave `None`, a ReferenceError).
    await until(page, f"document.body.getAttribute('data-live-refreshed') !== {json.dumps(refreshed)}")
    assert await page.locator(".bulk-pick:checked").count() == 2
    # The bulk actions are folded away on the phone, with the count of ticks on the fold.
    assert await page.locator("#bulk-form").is_hidden() and await page.inner_text("#bulk-count") == "2"
    await page.click("#bulk-fold summary")
    options = await page.locator("#bulk-user option").all_inner_texts()
    assert not any(people.admin.name in o for o in options)
    await page.select_option("#bulk-user", str(people.agent.id))
    await page.click('#bulk-form button[value="assign"]')
    await page.wait_for_selector(".flash >> text=Обновлено 2 обращения.")
    assert await overflow(page) <= 0
    for url in ("/console/board", f"/console/tickets/{first}", "/console/reports"):
        await page.goto(url)
        assert await overflow(page) <= 0, url
    await context.close()

    # --- the supervisor's board at 1440 px: every table inside its card, no header clipped ------------------
    context = await browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="ru-RU")
    page = await context.new_page()
    await sign_in(page, "super@test.example")
    await page.goto("/console/board")
    assert await tables_overflowing(page) == []
    assert await overflow(page) <= 0
    await page.goto("/console/inbox")
    assert await overflow(page) <= 0
    await shot(page, tmp_path, "console-inbox-1440")
    assert errors == []
    await context.close()
