"""In a real browser: a supervisor opens Reports, picks a quick range, types a range and changes the grouping,
follows a figure to the tickets behind it and on to a ticket; the screenshot `reports.png` shows the page."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.csat.models import CsatSurvey
from core.db.base import utcnow
from core.kpis import service as kpis
from core.kpis.schemas import KpiQuery
from core.sla.models import TicketSla
from core.tickets.models import format_ticket_number
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in
from tests.console.test_reports import add_ticket
from tests.core.sla.helpers import calendar, policy
from tests.support.browser import shot
from tests.support.waiting import wait_for

CHANNELS = ("telegram", "telegram", "webchat", "email", "rest")


async def three_weeks(sessionmaker: async_sessionmaker[AsyncSession], people: People) -> list[int]:
    """A believable three weeks (fixed seed): mixed channels and queues, a share resolved by the bot, people's
    first responses and resolutions, CSAT answers, SLA outcomes; today's tickets partly still open."""
    rng = random.Random(12)
    now = utcnow()
    ids: list[int] = []
    async with sessionmaker() as session, session.begin():
        sla_policy = await policy(session, await calendar(session))
        for day in range(20, -1, -1):
            for n in range(rng.randint(3, 9)):
                created = now - timedelta(days=day, hours=rng.randint(1, 9), minutes=n * 7)
                by_bot = rng.random() < 0.35
                first = None if by_bot else timedelta(minutes=rng.randint(3, 140))
                resolved = None if day < 2 and rng.random() < 0.6 else timedelta(minutes=rng.randint(20, 900))
                ticket_id = await add_ticket(
                    session, created, channel=rng.choice(CHANNELS), queue=rng.choice(("billing", "technical")),
                    agent=None if by_bot else people.agent, first_response=first, resolved=resolved,
                    by_bot=by_bot and resolved is not None)
                ids.append(ticket_id)
                if first is not None:
                    due = created + timedelta(minutes=60)
                    session.add(TicketSla(ticket_id=ticket_id, policy_id=sla_policy, started_at=created,
                                          first_response_due_at=due, first_response_met_at=created + first,
                                          notified=[] if created + first <= due else ["first_response:breach"]))
                if resolved is not None and not by_bot and rng.random() < 0.6:
                    session.add(CsatSurvey(ticket_id=ticket_id, channel="telegram", language="en",
                                           sent_at=created + resolved, score=rng.choice((2, 3, 4, 4, 5, 5, 5)),
                                           answered_at=created + resolved + timedelta(minutes=5),
                                           answer_channel="telegram"))
    return ids


async def test_supervisor_picks_a_range_groups_and_drills_down_to_a_ticket(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path) -> None:
    ids = await three_weeks(sessionmaker, people)

    async def folded() -> bool:  # the app's KPI fold job takes the new tickets in within seconds
        today = utcnow().astimezone(ZoneInfo("Europe/Moscow")).date()
        async with sessionmaker() as session:
            report = await kpis.report(session, KpiQuery(date_from=today - timedelta(days=29), date_to=today))
        return report.totals.tickets == len(ids)

    await wait_for(folded, "the KPI aggregates hold the new tickets")
    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, people.supervisor.email)
    await page.click('nav[aria-label="main"] >> text=Reports')
    await page.wait_for_url("**/console/reports")
    assert await page.locator('[data-preset="30"][aria-current="true"]').count() == 1
    assert await page.locator('[data-chart="volume"] svg').count() == 1
    assert await page.locator("#kpi-table tbody tr").count() == 30

    await page.click('[data-preset="7"]')
    await page.wait_for_url("**preset=7**")
    assert await page.locator("#kpi-table tbody tr").count() == 7

    today = utcnow().astimezone(ZoneInfo("Europe/Moscow")).date()
    start = today - timedelta(days=13)
    await page.fill("#report-from", start.isoformat())
    await page.fill("#report-to", today.isoformat())
    await page.select_option("#report-group", "channel")
    await page.click('#report-form button[type="submit"]')
    await page.wait_for_url("**group_by=channel**")
    assert await page.input_value("#report-from") == start.isoformat()
    telegram = page.locator('#kpi-table tr[data-key="telegram"] td[data-field="tickets"] a')
    shown = int(await telegram.inner_text())
    assert shown > 0

    await telegram.click()
    await page.wait_for_url("**/console/reports/tickets?**metric=tickets**")
    rows = page.locator("#drill-table tr[data-ticket]")
    assert await rows.count() == min(shown, 50)
    number = await rows.first.get_attribute("data-ticket")
    assert number in {format_ticket_number(i) for i in ids}
    assert "telegram" in await rows.first.inner_text()
    await page.click(f'#drill-table a[href="/console/tickets/{number}"]')
    await page.wait_for_url(f"**/console/tickets/{number}")

    await page.goto("/console/reports?preset=30&group_by=day")
    await page.wait_for_selector('[data-chart="csat"] svg')
    assert await page.locator('[data-chart="sla"] svg').count() == 1
    await shot(page, tmp_path, "reports")
    assert dialogs == []
    await context.close()
