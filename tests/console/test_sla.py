"""The console's SLA parts over HTTP: inbox countdowns and sort by due time, the ticket's SLA panel, the admin page,
and who is told about an alert."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import service as audit
from core.calendars import service as calendars
from core.clock import ManualClock
from core.db.base import utcnow
from core.i18n import LANGUAGES, translator
from core.sla import service as sla
from core.sla.schemas import SlaPolicyCreate
from core.tickets import service as tickets
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import People, login, post_form


async def make_policy(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        cal = await calendars.get_by_name(session, "24/7")
        await sla.create_policy(session, SlaPolicyCreate(
            name="Technical 15 min", calendar_id=cal.id, queues=["technical"], first_response_minutes=15,
            resolution_minutes=240, on_breach={"raise_priority": True}), actor=None)


async def test_inbox_sorts_by_due_time_with_countdowns_and_the_ticket_shows_its_sla(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await make_policy(sessionmaker)
    hello = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("c1", "my TV is broken, please call an operator", "a"))
    net = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                            json=rest_message("c2", "internet is down", "b"))
    number = net.json()["ticket_number"]
    await login(client, people.agent.email)
    page = await client.get("/console/inbox", params={"sort": "due", "view": "all"})
    assert page.status_code == 200
    html = page.text
    assert 'option value="due" selected' in html and "data-sla-due=" in html and "sla-ok" in html
    # The SLA ticket first, the open one without an SLA after it.
    assert html.index(number) < html.index(hello.json()["ticket_number"])
    rows = await client.get("/console/inbox/rows", params={"sort": "due"})
    assert "sla-countdown" in rows.text and "14 min" in rows.text
    assert (await client.get("/console/inbox", params={"sort": "nonsense"})).status_code == 200
    ticket = (await client.get(f"/console/tickets/{number}")).text
    assert 'class="card sla-panel"' in ticket and "Technical 15 min" in ticket and "First response" in ticket
    assert 'data-sla-state="ok"' in ticket
    other = (await client.get(f"/console/tickets/{hello.json()['ticket_number']}")).text
    assert "No SLA policy applies to this ticket." in other


async def test_admin_page_lists_policies_in_russian_too(client: httpx.AsyncClient, people: People,
                                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    empty = await client.get("/console/admin/sla")
    assert empty.status_code == 200 and "No SLA policies yet." in empty.text and "/console/admin/sla/new" in empty.text
    await make_policy(sessionmaker)
    page = (await client.get("/console/admin/sla")).text
    assert 'data-policy="Technical 15 min"' in page and "technical" in page and "raise priority" in page
    await post_form(client, "/console/admin/sla", "/console/language", {"language": "ru"})
    ru = (await client.get("/console/admin/sla")).text
    assert "Политики SLA" in ru and "повысить приоритет" in ru and "Первый ответ: 15" in ru


def test_an_alert_goes_to_the_assignee_and_the_queues_supervisors_only() -> None:
    alert = {"kind": "sla_breach", "ticket_id": 1, "assignee_id": 7, "team_id": 3}
    assert sla.alert_is_for(alert, 7, False, None)
    assert sla.alert_is_for(alert, 9, True, 3)
    assert not sla.alert_is_for(alert, 9, True, 4)
    assert not sla.alert_is_for(alert, 9, False, 3)
    assert not sla.alert_is_for({**alert, "kind": "status"}, 7, False, None)


def test_the_sla_texts_made_from_data_are_in_both_languages() -> None:
    keys = ([f"sla.state.{s}" for s in ("ok", "warning", "breached", "paused", "met")]
            + [f"sla.target.{t}" for t in sla.TARGETS] + [f"sla.event.{lvl}" for lvl in sla.LEVELS]
            + [f"sla.sort.{s}" for s in ("waiting", "due")] + ["admin.sla", "bot.sla_reminder"])
    for language in LANGUAGES:
        _ = translator(language)
        assert [k for k in keys if _.get(k) is None] == [], language
    assert translator("ru")("sla.state.breached") == "нарушен"


async def test_the_sla_views_read_the_apps_clock(client: httpx.AsyncClient, console_app: FastAPI, people: People,
                                                sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await make_policy(sessionmaker)
    net = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                            json=rest_message("c2", "internet is down", "b"))
    number = net.json()["ticket_number"]
    await login(client, people.agent.email)
    # Twenty minutes on the app's clock: the 15-minute first response is 5 minutes late, whatever the wall says.
    console_app.state.switchboard.clock = ManualClock(utcnow() + timedelta(minutes=20))
    ticket = (await client.get(f"/console/tickets/{number}")).text
    assert 'data-sla-state="breached"' in ticket
    assert re.search(r'class="sla-countdown">−[45] min<', ticket), ticket[ticket.index("sla-panel"):][:600]
    rows = (await client.get("/console/inbox/rows", params={"sort": "due"})).text
    assert 'data-sla-state="breached"' in rows and re.search(r'class="sla-countdown">−[45] min<', rows)


async def test_sla_warnings_and_breaches_are_labelled_in_the_history_and_listed_in_the_panel(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await make_policy(sessionmaker)
    net = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                            json=rest_message("c2", "internet is down", "b"))
    number = net.json()["ticket_number"]
    async with sessionmaker() as session, session.begin():
        ticket_id = tickets.ticket_id_from_ref(number)
        # What the SLA timers write when a target comes close and when it passes.
        audit.record(session, None, "sla.warning", "ticket", ticket_id, target="first_response")
        audit.record(session, None, "sla.breach", "ticket", ticket_id, target="first_response")
    await login(client, people.agent.email)
    page = (await client.get(f"/console/tickets/{number}")).text
    history = " ".join(page[page.index('id="history-h"'):].split())
    assert 'data-action="sla.warning"' in history and 'data-action="sla.breach"' in history
    assert "System: SLA warning: First response" in history and "System: SLA breached: First response" in history
    assert history.index("SLA warning") < history.index("SLA breached")  # oldest first
    panel = " ".join(page[page.index("sla-events"):page.index('id="history-h"')].split())
    assert panel.index("breached: First response") < panel.index("warning: First response")  # newest first
    await post_form(client, f"/console/tickets/{number}", "/console/language", {"language": "ru"})
    ru = " ".join((await client.get(f"/console/tickets/{number}")).text.split())
    assert "предупреждение SLA: Первый ответ" in ru and "нарушение SLA: Первый ответ" in ru
