"""The ticket page shows the customer's satisfaction answer (score, comment, low-score flag) and its history,
in English and Russian."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.config import CoreSettings
from core.csat.service import CsatSurveys
from core.db.base import utcnow
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.tickets import service as tickets
from core.tickets.models import TicketStatus
from core.users import service as users
from core.users.models import Team
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import People, login, post_form, save_queue


async def test_the_ticket_page_shows_a_low_score_with_its_comment_and_history(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Team).values(csat_enabled=True, csat_delay_minutes=5))
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("m-1", "my internet is down", sender="c-1"))
    number = r.json()["ticket_number"]
    async with sessionmaker() as s, s.begin():
        ticket = await tickets.get(s, tickets.ticket_id_from_ref(number), lock=True)
        await tickets.change_status(s, ticket, TicketStatus.resolved, await users.get(s, people.agent.id))
    # The survey fires on a runner of our own (the app's runs on the wall clock, five minutes early).
    handlers = TaskHandlers()
    CsatSurveys(CoreSettings(csat_quiet_from="00:00", csat_quiet_until="00:00")).register(handlers)
    clock = ManualClock(utcnow() + timedelta(minutes=6))
    assert await DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id="t").run_once() == 1
    r = await client.post("/channels/rest/csat", headers=REST_HEADERS,
                          json={"ticket_number": number, "score": 2, "comment": "Три дня <b>без</b> связи"})
    assert r.status_code == 201, r.text

    await login(client, "super@test.example")
    page = await client.get(f"/console/tickets/{number}")
    text = " ".join(page.text.split())
    assert 'data-csat-score="2"' in page.text and "csat-low" in page.text
    assert "Customer satisfaction" in text and "low score: for the supervisor" in text
    assert "Три дня &lt;b&gt;без&lt;/b&gt; связи" in page.text  # escaped, never markup
    history = " ".join(page.text[page.text.index('id="history-h"'):].split())
    assert "satisfaction survey sent" in history and "customer rated: 2/5" in history
    assert "low score flagged for the supervisor" in history

    await post_form(client, f"/console/tickets/{number}", "/console/language", {"language": "ru"})
    text = " ".join((await client.get(f"/console/tickets/{number}")).text.split())
    assert "Удовлетворённость клиента" in text and "клиент оценил: 2/5" in text


async def test_no_panel_without_an_answer(client: httpx.AsyncClient, people: People) -> None:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("m-1", "my internet is down", sender="c-1"))
    await login(client, "super@test.example")
    page = await client.get(f"/console/tickets/{r.json()['ticket_number']}")
    assert page.status_code == 200 and "data-csat-score" not in page.text


async def test_an_admin_turns_a_queues_surveys_on_with_a_delay(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    page = await client.get("/console/admin/queues")
    assert 'action="/console/admin/queues/billing"' in page.text and "Satisfaction surveys" in page.text
    r = await save_queue(client, "billing", csat_enabled="on", csat_delay_minutes="45")
    assert r.status_code == 303
    async with sessionmaker() as s:
        team = await users.team_by_slug(s, "billing")
    assert (team.csat_enabled, team.csat_delay_minutes) == (True, 45)
    for bad in ("-1", "soon", "99999"):
        r = await save_queue(client, "billing", csat_delay_minutes=bad)
        assert r.status_code == 303
        assert "flash-error" in (await client.get("/console/admin/queues")).text
    async with sessionmaker() as s:
        team = await users.team_by_slug(s, "billing")
    assert (team.csat_enabled, team.csat_delay_minutes) == (True, 45)  # nothing half-saved
    r = await save_queue(client, "billing", csat_enabled=None, csat_delay_minutes="0")  # unticked: off
    async with sessionmaker() as s:
        team = await users.team_by_slug(s, "billing")
    assert (team.csat_enabled, team.csat_delay_minutes) == (False, 0)
