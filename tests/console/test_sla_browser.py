"""The SLA's live parts in a real browser: the inbox countdown, and the notice when a ticket's SLA is breached."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.calendars import service as calendars
from core.db.base import utcnow
from core.jobs import service as jobs
from core.sla import service as sla
from core.sla.models import TicketSla
from core.sla.schemas import SlaPolicyCreate
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in


async def test_queue_supervisor_sees_the_countdown_and_a_breach_notice_live(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        cal = await calendars.get_by_name(session, "24/7")
        await sla.create_policy(session, SlaPolicyCreate(name="Technical", calendar_id=cal.id, queues=["technical"],
                                                         first_response_minutes=15), actor=None)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("sla-b1", "internet is down", sender="c-sla"))
        assert r.status_code == 201, r.text
        number, ticket_id = r.json()["ticket_number"], r.json()["ticket_id"]
    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "super@test.example")  # a supervisor of the technical queue
    await page.goto("/console/inbox?sort=due")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    badge = page.locator(f'tr[data-ticket="{number}"] .sla-badge')
    assert await badge.get_attribute("data-sla-state") == "ok"
    assert "min" in await badge.locator(".sla-countdown").inner_text()
    # The first response falls due now (as if 15 minutes had passed): the server's timer fires it.
    async with sessionmaker() as session, session.begin():
        clock = await session.get(TicketSla, ticket_id)
        assert clock is not None
        past = utcnow() - timedelta(seconds=1)
        clock.first_response_warn_at, clock.first_response_due_at = past - timedelta(minutes=3), past
        await jobs.reschedule(session, sla.TASK_KIND, sla.task_key(ticket_id), past)
    notice = page.locator(".sla-notice-breach")
    await notice.wait_for(timeout=15_000)
    assert await notice.inner_text() == f"{number}: SLA breached (First response)"
    await page.wait_for_selector(f'tr[data-ticket="{number}"] .sla-badge[data-sla-state="breached"]', timeout=10_000)
    assert dialogs == []
    await context.close()
