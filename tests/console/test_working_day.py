"""The console for a working day over HTTP (issue 16): unread markers, inbox previews, visitor names, bulk actions,
assignees, the language switch, error pages, the login page's language, the favicon, and who gets notified."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.console.routes import notifies
from core.customers.models import Customer
from core.db.base import utcnow
from core.i18n import preferred_language
from core.nlu_admin.models import JobState, NluTrainingJob
from core.tickets.models import Ticket, TicketStatus
from core.unread.models import TicketSeen
from core.users.models import Role, User
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import People, csrf_of, login, post_form


async def write(client: httpx.AsyncClient, ext: str, text: str, sender: str = "c-1") -> str:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message(ext, text, sender=sender))
    assert r.status_code in (200, 201, 202), r.text
    return str(r.json()["ticket_number"])


@asynccontextmanager
async def signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await login(c, email)).status_code == 303
        yield c


def row_of(html: str, number: str) -> str:
    match = re.search(rf'<tr data-ticket="{number}".*?</tr>', html, re.S)
    assert match, f"no row of {number}"
    return match.group(0)


async def test_unread_markers_are_per_agent_and_come_back_with_a_new_message(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await write(client, "u-1", "My TV is black")
    async with signed_in(console_app, "agent@test.example") as agent, \
            signed_in(console_app, "super@test.example") as boss:
        assert 'data-unread="true"' in row_of((await agent.get("/console/inbox")).text, number)
        assert (await agent.get(f"/console/tickets/{number}")).status_code == 200
        assert 'data-unread="true"' not in row_of((await agent.get("/console/inbox")).text, number)
        # Seen by the agent only: the supervisor has not looked at it yet.
        assert 'data-unread="true"' in row_of((await boss.get("/console/inbox")).text, number)
        # The customer writes again: new for the agent again; the live refresh of the ticket marks it seen.
        assert await write(client, "u-2", "still black") == number
        assert 'data-unread="true"' in row_of((await agent.get("/console/inbox/rows")).text, number)
        live = await agent.get(f"/console/tickets/{number}/live", headers={"X-Requested-With": "fetch"})
        assert live.status_code == 200
        assert 'data-unread="true"' not in row_of((await agent.get("/console/inbox/rows")).text, number)
    async with sessionmaker() as session:
        marks = (await session.scalars(select(TicketSeen))).all()
    assert {m.user_id for m in marks} == {people.agent.id}  # one row per (user, ticket), moved forward


async def test_inbox_row_shows_the_latest_message_and_the_escalation_reason(
        client: httpx.AsyncClient, console_app: FastAPI, people: People) -> None:
    number = await write(client, "p-1", "hello")
    number2 = await write(client, "p-2", "I want an operator please")
    assert number2 == number
    await login(client, "agent@test.example")
    row = row_of((await client.get("/console/inbox")).text, number)
    latest = re.search(r'<div class="latest" data-author="([a-z]+)">(.*?)</div>', row, re.S)
    assert latest, row
    # The bot's hand-over notice came last; the reason the bot gave the ticket to people is named in words.
    assert latest.group(1) == "bot"
    assert 'data-reason="handoff"' in row
    async with signed_in(console_app, "agent@test.example") as ru:
        r = await post_form(ru, "/console/inbox", "/console/language", {"language": "ru", "back": "/console/inbox"})
        assert r.status_code == 303
        row = row_of((await ru.get("/console/inbox")).text, number)
        assert "Бот:" in row and "data-reason=\"handoff\"" in row


async def test_a_nameless_web_chat_visitor_is_named_by_first_contact_not_by_number(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json={
        "external_message_id": "v-1", "sender": {"external_id": "visitor-1"}, "text": "My TV is black"})
    number = str(r.json()["ticket_number"])
    await login(client, "agent@test.example")
    row = row_of((await client.get("/console/inbox")).text, number)
    async with sessionmaker() as session:
        customer = (await session.scalars(select(Customer))).one()
    assert customer.name is None
    assert f'title="#{customer.id}"' in row and "Web-chat visitor, today" in row
    assert f">#{customer.id}<" not in row


async def test_language_switch_keeps_the_page(client: httpx.AsyncClient, people: People) -> None:
    number = await write(client, "l-1", "My TV is black")
    await login(client, "agent@test.example")
    page = f"/console/tickets/{number}"
    html = (await client.get(page)).text
    assert f'name="back" value="{page}"' in html
    r = await client.post("/console/language", data={"csrf_token": csrf_of(html), "language": "ru", "back": page})
    assert r.status_code == 303 and r.headers["location"] == page
    # A query string comes back too; a foreign address does not.
    html = (await client.get("/console/inbox?view=mine&q=TV")).text
    assert 'name="back" value="/console/inbox?view=mine&amp;q=TV"' in html
    r = await client.post("/console/language", data={"csrf_token": csrf_of(html), "language": "en",
                                                     "back": "https://evil.example/console"})
    assert r.headers["location"] == "/console/inbox"


async def test_admins_are_not_offered_as_assignees(client: httpx.AsyncClient, people: People) -> None:
    number = await write(client, "a-1", "My TV is black")
    await login(client, "super@test.example")
    for url in (f"/console/tickets/{number}", "/console/board", "/console/inbox"):
        html = (await client.get(url)).text
        offered = {int(v) for v in re.findall(r'<option value="(\d+)"', html)}
        assert people.agent.id in offered and people.supervisor.id in offered, url
        assert people.admin.id not in offered, url


async def test_bulk_reassign_and_status_for_supervisors(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    numbers = [await write(client, f"b-{i}", "My TV is black", sender=f"s-{i}") for i in range(3)]
    await login(client, "super@test.example")
    inbox = (await client.get("/console/inbox")).text
    assert 'id="bulk-form"' in inbox and inbox.count('class="bulk-pick"') >= 3
    token = csrf_of(inbox)

    async def bulk(**fields: object) -> httpx.Response:
        return await client.post("/console/tickets/bulk", data={"csrf_token": token, **fields},
                                 headers={"Referer": "http://testserver/console/inbox"})

    r = await bulk(ticket=numbers[:2], action="assign", user_id=str(people.agent.id), next="/console/inbox?view=all")
    assert r.status_code == 303 and r.headers["location"] == "/console/inbox?view=all"
    async with sessionmaker() as session:
        tickets = {t.number: t for t in (await session.scalars(select(Ticket))).all()}
    assert [tickets[n].assignee_id for n in numbers] == [people.agent.id, people.agent.id, None]
    assert "2 tickets updated" in (await client.get("/console/inbox")).text

    r = await bulk(ticket=numbers, action="status", status="resolved")
    async with sessionmaker() as session:
        statuses = {t.number: t.status for t in (await session.scalars(select(Ticket))).all()}
    assert all(statuses[n] == TicketStatus.resolved for n in numbers)
    # Closed -> open is no allowed transition for some: each one that cannot change is named, the rest change.
    r = await bulk(ticket=numbers, action="status", status="bot")
    flash = (await client.get("/console/inbox")).text
    assert "Not changed:" in flash and numbers[0] in flash

    # Refused with the reason: nothing ticked, too many, a malformed number, an unknown action, an admin assignee.
    for fields, reason in (({"action": "assign"}, "tick at least one ticket"),
                           ({"ticket": [f"T-{i}" for i in range(1, 102)], "action": "assign"}, "at most 100"),
                           ({"ticket": ["nonsense"], "action": "assign"}, "not found"),
                           ({"ticket": numbers[:1], "action": "explode"}, "action must be assign, status"),
                           ({"ticket": numbers[:1], "action": "status", "status": "<b>"}, "unknown status"),
                           ({"ticket": numbers[:1], "action": "assign", "user_id": str(people.admin.id)},
                            "agents and supervisors only")):
        r = await bulk(**fields)
        assert r.status_code == 303
        page = (await client.get("/console/inbox")).text
        assert reason in page, (fields, reason)

    # Agents cannot.
    async with signed_in(console_app, "agent@test.example") as agent:
        html = (await agent.get("/console/inbox")).text
        assert 'id="bulk-form"' not in html and "bulk-pick" not in html
        r = await agent.post("/console/tickets/bulk", data={"csrf_token": csrf_of(html), "ticket": numbers[:1],
                                                            "action": "status", "status": "closed"})
        assert r.status_code == 403


async def test_console_error_pages_are_html_in_the_readers_language(
        client: httpx.AsyncClient, people: People) -> None:
    r = await client.get("/console/no-such-page", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "В консоли нет такой страницы" in r.text and "<html" in r.text
    await login(client, "agent@test.example")
    r = await client.get("/console/tickets/T-000001/nope")
    assert r.status_code == 404 and "There is no such page in the console" in r.text
    assert 'class="topbar"' in r.text  # signed in: the console's header, to go on from there
    r = await client.delete("/console/inbox")
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    # The API keeps its JSON, and a fetch from a console page gets no page.
    r = await client.get("/no-such-api")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    r = await client.get("/console/nope", headers={"X-Requested-With": "fetch"})
    assert r.status_code == 404 and not r.headers["content-type"].startswith("text/html")


async def test_login_page_speaks_the_browsers_language_and_the_favicon(client: httpx.AsyncClient) -> None:
    ru = await client.get("/console/login", headers={"Accept-Language": "ru-RU,ru;q=0.9,en-US;q=0.8"})
    en = await client.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="ru">' in ru.text and '<html lang="en">' in en.text
    assert ru.text != en.text
    # The language chosen before (the cookie left at sign-out) wins over the browser's.
    client.cookies.set("sb_lang", "en", path="/console")
    assert '<html lang="en">' in (await client.get("/console/login", headers={"Accept-Language": "ru"})).text
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.content
    assert 'rel="icon" href="/console/static/favicon.svg"' in en.text
    assert (await client.get("/console/static/favicon.svg")).status_code == 200


@pytest.mark.parametrize(("header", "expected"), [
    ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
    ("en-US,en;q=0.9,ru;q=0.8", "en"),
    ("de-DE,de;q=0.9,ru;q=0.5", "ru"),  # nothing better than Russian asked for
    ("uk-UA", "ru"),
    ("en;q=0.2,ru;q=0.8", "ru"),  # weights, not order
    ("ru;q=0", "en"),  # "not Russian"
    ("*", "en"), ("", "en"), (None, "en"),
    ("ru;q=abc,en", "en"),  # a malformed weight drops that tag only
    ("x" * 5000, "en"),
])
def test_preferred_language(header: str | None, expected: str) -> None:
    assert preferred_language(header) == expected


def _user(user_id: int, team_id: int | None) -> User:
    return User(id=user_id, team_id=team_id, role=Role.agent, email="x@test.example", name="x")


@pytest.mark.parametrize(("payload", "user", "expected"), [
    ({"kind": "continued", "status": "open", "assignee_id": 7, "team_id": 1}, _user(7, 1), True),
    ({"kind": "continued", "status": "open", "assignee_id": 8, "team_id": 1}, _user(7, 1), False),
    ({"kind": "created", "status": "new", "assignee_id": None, "team_id": 1}, _user(7, 1), True),
    ({"kind": "created", "status": "new", "assignee_id": None, "team_id": 2}, _user(7, 1), False),
    ({"kind": "created", "status": "new", "assignee_id": None, "team_id": 2}, _user(7, None), True),
    ({"kind": "created", "status": "bot", "assignee_id": None, "team_id": 1}, _user(7, 1), False),
    ({"kind": "reopened", "status": "open", "assignee_id": 7, "team_id": 1}, _user(7, 1), True),
    ({"kind": "assigned", "status": "open", "assignee_id": 7, "team_id": 1}, _user(7, 1), True),
    ({"kind": "assigned", "status": "open", "assignee_id": 8, "team_id": 1}, _user(7, 1), False),
    ({"kind": "transferred", "status": "open", "assignee_id": None, "team_id": 1}, _user(7, 1), True),
    ({"kind": "replied", "status": "open", "assignee_id": 7, "team_id": 1}, _user(7, 1), False),
    ({"kind": "status", "status": "resolved", "assignee_id": 7, "team_id": 1}, _user(7, 1), False),
])
def test_who_is_notified(payload: dict[str, object], user: User, expected: bool) -> None:
    assert notifies(payload, user) is expected


async def test_training_report_warns_of_a_small_held_out_sample(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    def report(supports: dict[str, int]) -> dict[str, object]:
        per_intent = {name: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": float(n)}
                      for name, n in supports.items()}
        return {"holdout": {"accuracy": 1.0, "macro_f1": 1.0, "per_intent": per_intent}, "n_examples": 40,
                "n_intents": len(supports)}

    async with sessionmaker() as session, session.begin():
        small = NluTrainingJob(state=JobState.succeeded, progress=1.0, stage="done", created_at=utcnow(),
                               finished_at=utcnow(), report=report({"greeting": 1, "goodbye": 1, "order": 1}))
        large = NluTrainingJob(state=JobState.succeeded, progress=1.0, stage="done", created_at=utcnow(),
                               finished_at=utcnow(), report=report({"greeting": 20, "goodbye": 20, "order": 3}))
        session.add_all([small, large])
    await login(client, "admin@test.example")
    page = (await client.get(f"/console/admin/training/jobs/{small.id}")).text
    assert 'id="small-sample"' in page and "only 3 examples: too few to trust them" in page
    assert page.count('data-few="1"') == 3
    page = (await client.get(f"/console/admin/training/jobs/{large.id}")).text
    assert 'id="small-sample"' not in page
    assert page.count('data-few="1"') == 1  # "order", with 3 held-out examples


async def test_a_new_intents_queue_is_chosen_from_the_queues(client: httpx.AsyncClient, people: People) -> None:
    await login(client, "admin@test.example")
    page = (await client.get("/console/admin/intents")).text
    queues = re.findall(r'<option value="([a-z_-]+)"', page.split('id="new-intent-queue"')[1].split("</select>")[0])
    assert "billing" in queues and "technical" in queues
    r = await post_form(client, "/console/admin/intents", "/console/admin/intents",
                        {"name": "sim_block", "description": "", "queue": "billing"})
    assert r.status_code == 303
    routing = (await client.get("/console/admin/routing")).text
    assert re.search(r'value="sim_block".*?<option value="billing" selected', routing, re.S)
    # The routing page's new rule picks the intent from a list that holds it.
    assert '<option value="sim_block">sim_block</option>' in routing.split('id="route-intent"')[1]
    # An unknown queue is refused, and the intent is not created.
    r = await post_form(client, "/console/admin/intents", "/console/admin/intents",
                        {"name": "sim_lost", "description": "", "queue": "no-such-queue"})
    assert "no-such-queue" in (await client.get(r.headers["location"])).text
    assert "sim_lost" not in (await client.get("/console/admin/intents")).text
