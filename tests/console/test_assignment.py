"""Automatic assignment in the console: queue settings with their warnings, the heartbeat and the away toggle,
languages on the users page, presence on the board, and the ticket page's history."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.assignment.job import AssignmentRunner
from core.clock import SYSTEM_CLOCK
from core.tickets import service as tickets
from core.users import service as users
from core.users.models import AssignmentMode
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import People, csrf_of, login, post_form, save_queue


async def test_an_admin_sets_a_queues_mode_and_sees_why_its_tickets_would_wait(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    r = await save_queue(client, "sales", name="Sales", assignment_mode="least_loaded", return_after_minutes="30")
    assert r.status_code == 303
    page = await client.get("/console/admin/queues")
    assert "flash-error" in page.text and "Queue Sales has no agents" in page.text
    assert 'data-warning="no_agents"' in page.text
    async with sessionmaker() as session:
        team = await users.team_by_slug(session, "sales")
    assert (team.assignment_mode, team.return_after_minutes) == (AssignmentMode.least_loaded, 30)

    for bad in ({"return_after_minutes": "0"}, {"return_after_minutes": "soon"}, {"assignment_mode": "random"}):
        r = await save_queue(client, "sales", **{"assignment_mode": "manual", "return_after_minutes": "15", **bad})
        assert r.status_code == 303
        page = await client.get("/console/admin/queues")
        assert "flash-error" in page.text
    async with sessionmaker() as session:
        team = await users.team_by_slug(session, "sales")
    assert team.assignment_mode == AssignmentMode.least_loaded  # nothing of a refused form was saved

    await post_form(client, "/console/admin/queues", "/console/language", {"language": "ru"})
    page = await client.get("/console/admin/queues")
    assert "Наименее загруженному" in page.text and "В очереди Sales нет агентов" in page.text


async def test_the_console_heartbeat_and_the_away_toggle(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "agent@test.example")
    page = await client.get("/console/inbox")
    assert 'data-heartbeat-url="/console/presence/heartbeat"' in page.text
    assert 'action="/console/presence/away"' in page.text
    token = csrf_of(page.text)
    assert (await client.post("/console/presence/heartbeat")).status_code == 403  # no CSRF token
    r = await client.post("/console/presence/heartbeat", headers={"X-CSRF-Token": token})
    assert r.status_code == 204

    r = await post_form(client, "/console/inbox", "/console/presence/away", {"away": "on", "next": "/console/board"})
    assert r.status_code == 303 and r.headers["location"] == "/console/board"
    async with sessionmaker() as session:
        assert (await users.get(session, people.agent.id)).away is True
    page = await client.get("/console/inbox")
    assert "I&#39;m back" in page.text or "I'm back" in page.text

    r = await post_form(client, "/console/inbox", "/console/presence/away", {"away": "maybe"})
    page = await client.get("/console/inbox")
    assert "flash-error" in page.text
    r = await post_form(client, "/console/inbox", "/console/presence/away",
                        {"away": "off", "next": "https://evil.example/"})
    assert r.headers["location"] == "/console/inbox"
    async with sessionmaker() as session:
        assert (await users.get(session, people.agent.id)).away is False


async def test_languages_on_the_users_page_presence_on_the_board(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    form = {"name": "agent", "role": "agent", "language": "en", "queue": "technical", "capacity": "10",
            "is_active": "on"}
    url = f"/console/admin/users/{people.agent.id}"
    assert (await post_form(client, "/console/admin/users", url, {**form, "languages": "ru, EN"})).status_code == 303
    async with sessionmaker() as session:
        assert (await users.get(session, people.agent.id)).languages == ["ru", "en"]
    await post_form(client, "/console/admin/users", url, {**form, "languages": "russian"})
    assert "flash-error" in (await client.get("/console/admin/users")).text
    async with sessionmaker() as session:
        assert (await users.get(session, people.agent.id)).languages == ["ru", "en"]

    async with sessionmaker() as session, session.begin():
        supervisor = await users.get(session, people.supervisor.id)
        supervisor.away = True
    agent_client = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with agent_client:
        await login(agent_client, "super@test.example")
        page = await agent_client.get("/console/board")
    assert 'data-presence="away"' in page.text  # the supervisor themselves: seen just now, away
    assert page.text.count('data-presence="offline"') == 1  # the agent has not opened the console


async def test_the_ticket_page_shows_automatic_assignment_in_its_history(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("m-1", "my internet is down", sender="c-1"))
    number = r.json()["ticket_number"]
    await login(client, "agent@test.example")
    token = csrf_of((await client.get("/console/inbox")).text)
    await client.post("/console/presence/heartbeat", headers={"X-CSRF-Token": token})
    async with sessionmaker() as session, session.begin():
        (await users.team_by_slug(session, "technical")).assignment_mode = AssignmentMode.round_robin
        supervisor = await users.get(session, people.supervisor.id)
        supervisor.team_id = None  # only the agent is in the queue
    # The app's own job may be first: either way the ticket is the agent's and the page says how it came.
    await AssignmentRunner(sessionmaker, None, SYSTEM_CLOCK, offline_after=timedelta(seconds=90)).run_once()
    async with sessionmaker() as session, session.begin():
        ticket = await tickets.get(session, tickets.ticket_id_from_ref(number), lock=True)
        await tickets.take(session, ticket, await users.get(session, people.supervisor.id), take_over=True)
    page = await client.get(f"/console/tickets/{number}")
    history = page.text[page.text.index('id="history-h"'):]
    assert history.index('data-action="ticket.auto_assign"') < history.index('data-action="ticket.take_over"')
    assert "System: assigned automatically: — → agent" in " ".join(history.split())
    assert "super: taken over: agent → super" in " ".join(history.split())
