"""In a real browser: an admin creates a business-hours calendar and an SLA policy counted in it, through the
forms, and the list pages show them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.calendars import service as calendars
from core.sla import service as sla
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in
from tests.support.browser import shot


async def test_admin_creates_a_calendar_and_a_policy_in_it_through_the_forms(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path) -> None:
    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "admin@test.example")
    await page.goto("/console/admin/calendars")
    await page.click("text=New calendar")
    await page.fill('input[name="name"]', "Support desk")
    await page.fill('input[name="time_zone"]', "Europe/Samara")
    await page.fill('input[name="weekly.mon"]', "09:00-13:00, 12:00-18:00")  # overlapping: refused, kept
    await page.fill('textarea[name="exceptions"]', "2026-01-01 closed New Year")
    await page.click('.admin-form button[type="submit"]')
    error = page.locator("#form-error")
    assert "weekly.mon: intervals 09:00-13:00 and 12:00-18:00 overlap" in await error.inner_text()
    assert await page.input_value('input[name="name"]') == "Support desk"
    assert await page.input_value('textarea[name="exceptions"]') == "2026-01-01 closed New Year"
    await page.fill('input[name="weekly.mon"]', "09:00-13:00, 14:00-18:00")
    await page.click('.admin-form button[type="submit"]')
    await page.wait_for_selector(".calendar-status [data-open]")
    assert "Calendar “Support desk” saved." in await page.locator(".flash").inner_text()
    await shot(page, tmp_path, "admin-calendar")

    await page.click('nav.tabs >> text=SLA')
    await page.click("text=New policy")
    await page.fill('input[name="name"]', "Desk 30 min")
    await page.select_option('select[name="calendar_id"]', label="Support desk (Europe/Samara)")
    await page.check('input[name="queues"][value="technical"]')
    await page.check('input[name="priorities"][value="urgent"]')
    await page.fill('input[name="first_response_minutes"]', "30")
    await page.fill('input[name="warning_percent"]', "60")
    await page.check('input[name="on_breach.raise_priority"]')
    await page.select_option('select[name="on_breach.move_to_queue"]', "billing")
    await shot(page, tmp_path, "admin-sla-policy")
    await page.click('.admin-form button[type="submit"]')
    row = page.locator('tr[data-policy="Desk 30 min"]')
    await row.wait_for()
    text = await row.inner_text()
    assert "Support desk" in text and "60 %" in text and "raise priority, move to billing" in text
    assert dialogs == []
    await context.close()

    async with sessionmaker() as session:
        desk = await calendars.get_by_name(session, "Support desk")
        policy = next(p for p in await sla.list_policies(session) if p.name == "Desk 30 min")
    assert policy.calendar_id == desk.id and policy.first_response_minutes == 30 and policy.priorities == ["urgent"]
