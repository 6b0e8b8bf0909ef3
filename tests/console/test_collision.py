"""Collision control in the console (issue 11, scope 7): the status select shows the current status, a take from a
stale page asks before taking a held ticket over, and a reply from a non-assignee warns first."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.events import Topic
from core.tickets.models import Direction, Message, Ticket
from core.users.models import Role
from tests.conftest import REST_HEADERS, make_user, rest_message
from tests.console.conftest import People, csrf_of, login, post_form


async def new_ticket(client: httpx.AsyncClient, ext: str = "c-1") -> str:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message(ext, "My TV is black", sender=f"s-{ext}"))
    return str(r.json()["ticket_number"])


@asynccontextmanager
async def signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser: another agent signed in to the same app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await login(c, email)).status_code == 303
        yield c


async def ticket_row(sessionmaker: async_sessionmaker[AsyncSession], number: str) -> Ticket:
    async with sessionmaker() as session:
        return (await session.scalars(select(Ticket).where(Ticket.id == int(number[2:])))).one()


def selected_status(html: str) -> list[str]:
    select_html = re.search(r'<select id="status-select" name="status">(.*?)</select>', html, re.S)
    assert select_html, "no status select on the page"
    return re.findall(r'<option value="([a-z]+)" selected>', select_html.group(1))


async def test_status_select_shows_the_current_status_and_saving_it_changes_nothing(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    await login(client, "agent@test.example")
    url = f"/console/tickets/{number}"
    await post_form(client, url, f"{url}/take", {})
    page = await client.get(url)
    assert selected_status(page.text) == ["open"]
    # Saving the form as shown (what a browser sends) keeps the ticket open.
    r = await post_form(client, url, f"{url}/status", {"status": selected_status(page.text)[0]})
    assert r.status_code == 303
    assert (await ticket_row(sessionmaker, number)).status.value == "open"
    await post_form(client, url, f"{url}/status", {"status": "pending"})
    assert selected_status((await client.get(url)).text) == ["pending"]


async def test_take_from_a_stale_page_asks_naming_the_holder_then_takes_over(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    holder, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    await login(client, "agent@test.example")
    stale = await client.get(url)  # drawn while nobody holds the ticket
    async with signed_in(console_app, "anna@test.example") as anna:
        assert (await post_form(anna, url, f"{url}/take", {})).status_code == 303

    r = await client.post(f"{url}/take", data={"csrf_token": csrf_of(stale.text)})
    assert r.status_code == 409
    assert "anna is working on this ticket. Take it over?" in r.text
    assert 'name="take_over" value="1"' in r.text and f'name="expected_assignee_id" value="{holder.id}"' in r.text
    assert (await ticket_row(sessionmaker, number)).assignee_id == holder.id  # nothing taken silently

    # The fresh page says who holds it and offers a take-over, which asks too.
    page = await client.get(url)
    assert "Take over" in page.text
    r = await client.post(f"{url}/take", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 409 and "Take it over?" in r.text

    bus = console_app.state.switchboard.bus
    async with bus.subscribe(Topic.TICKETS) as events:
        r = await client.post(f"{url}/take", data={"csrf_token": csrf_of(page.text), "take_over": "1",
                                                    "expected_assignee_id": str(holder.id)})
        assert r.status_code == 303
        payloads = [events.get_nowait()[1] for _ in range(events.qsize())]
    assert any(p.get("kind") == "taken_over" and p["previous_assignee_id"] == holder.id
               and p["assignee_id"] == people.agent.id for p in payloads), payloads
    assert (await ticket_row(sessionmaker, number)).assignee_id == people.agent.id
    async with sessionmaker() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.take_over"))).one()
    assert (entry.actor_user_id, entry.data["old"], entry.data["new"]) == (people.agent.id, holder.id,
                                                                          people.agent.id)


async def test_a_malformed_expected_holder_is_refused_with_the_reason_not_read_as_nobody(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    await login(client, people.supervisor.email)
    page = (await client.get(url)).text
    ticket_id = (await ticket_row(sessionmaker, number)).id
    for action, extra in ((f"{url}/take", {"take_over": "1"}), (f"{url}/assign", {"user_id": str(people.agent.id)}),
                          ("/console/board/reassign", {"ticket_id": str(ticket_id), "user_id": str(people.agent.id)})):
        for bad in ("abc", "-1", "1.5", "¹"):
            r = await client.post(action, data={"csrf_token": csrf_of(page), "expected_assignee_id": bad, **extra})
            assert r.status_code == 422, (action, bad, r.status_code)
            assert "expected_assignee_id must be a user id or 0 for nobody" in r.text, (action, bad)
    assert (await ticket_row(sessionmaker, number)).assignee_id is None  # nothing taken or assigned
    # "0" and an empty value still say "nobody", a valid id that person.
    r = await client.post(f"{url}/assign", data={"csrf_token": csrf_of(page), "user_id": str(people.agent.id),
                                                 "expected_assignee_id": "0"})
    assert r.status_code == 303 and (await ticket_row(sessionmaker, number)).assignee_id == people.agent.id
    r = await client.post(f"{url}/take", data={"csrf_token": csrf_of(page), "take_over": "1",
                                               "expected_assignee_id": str(people.agent.id)})
    assert r.status_code == 303 and (await ticket_row(sessionmaker, number)).assignee_id == people.supervisor.id


async def test_confirmed_take_over_never_takes_from_someone_who_took_it_since(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    first, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    await make_user(sessionmaker, Role.supervisor, "boris@test.example", "technical")
    async with signed_in(console_app, "anna@test.example") as anna:
        await post_form(anna, url, f"{url}/take", {})
    await login(client, "agent@test.example")
    confirm_page = await client.post(f"{url}/take", data={"csrf_token": csrf_of((await client.get(url)).text),
                                                          "expected_assignee_id": ""})
    assert confirm_page.status_code == 409
    # Meanwhile a supervisor takes it over from anna.
    async with signed_in(console_app, "boris@test.example") as boris:
        r = await post_form(boris, url, f"{url}/take", {"take_over": "1", "expected_assignee_id": str(first.id)})
        assert r.status_code == 303
    # Confirming "take it from anna" now names boris instead of taking it from him.
    r = await client.post(f"{url}/take", data={"csrf_token": csrf_of(confirm_page.text), "take_over": "1",
                                                "expected_assignee_id": str(first.id)})
    assert r.status_code == 409 and "boris is working on this ticket" in r.text
    assert (await ticket_row(sessionmaker, number)).assignee_id != people.agent.id


async def test_take_over_question_in_russian(client: httpx.AsyncClient, console_app: FastAPI, people: People,
                                             sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    async with signed_in(console_app, "anna@test.example") as anna:
        await post_form(anna, url, f"{url}/take", {})
    await login(client, "agent@test.example")
    await post_form(client, "/console/inbox", "/console/language", {"language": "ru"})
    r = await client.post(f"{url}/take", data={"csrf_token": csrf_of((await client.get(url)).text),
                                                "expected_assignee_id": ""})
    assert r.status_code == 409 and "Тикет ведёт anna. Забрать?" in r.text


async def test_reply_from_a_non_assignee_warns_first(client: httpx.AsyncClient, console_app: FastAPI,
                                                     people: People,
                                                     sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    holder, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    await login(client, "agent@test.example")
    stale = await client.get(url)  # no warning yet: nobody holds it
    assert 'id="not-assignee-warning"' not in stale.text
    async with signed_in(console_app, "anna@test.example") as anna:
        await post_form(anna, url, f"{url}/take", {})

    r = await client.post(f"{url}/reply", data={"csrf_token": csrf_of(stale.text), "text": "Reboot the box"},
                          files={"files": ("log.txt", b"x", "text/plain")})
    assert r.status_code == 409
    assert "anna is working on this ticket. Send your reply anyway?" in r.text
    assert "Reboot the box</textarea>" in r.text and "choose them again" in r.text

    async def outbound() -> list[Message]:
        async with sessionmaker() as session:
            return list((await session.scalars(select(Message).where(
                Message.direction == Direction.outbound, Message.author_kind == "agent"))).all())

    assert await outbound() == []
    page = await client.get(url)  # a fresh page warns up front, with a box to tick
    assert 'id="not-assignee-warning"' in page.text and 'name="confirm_not_assignee"' in page.text
    r = await client.post(f"{url}/reply", data={"csrf_token": csrf_of(r.text), "text": "Reboot the box",
                                                 "confirm_not_assignee": "1"})
    assert r.status_code == 303
    assert [m.text for m in await outbound()] == ["Reboot the box"]
    assert (await ticket_row(sessionmaker, number)).assignee_id == holder.id




async def test_reassigning_from_a_stale_board_asks_naming_the_holder_then_reassigns(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    ticket_id = int(number[2:])
    anna, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    await login(client, "super@test.example")
    board = await client.get("/console/board")  # drawn while nobody holds the ticket
    assert board.status_code == 200
    assert re.search(rf'name="ticket_id" value="{ticket_id}">\s*(?:\{{#.*?#\}}\s*)?'
                     r'<input type="hidden" name="expected_assignee_id" value="0">', board.text), board.text[-3000:]
    async with signed_in(console_app, "anna@test.example") as anna_client:
        assert (await post_form(anna_client, url, f"{url}/take", {})).status_code == 303

    form = {"csrf_token": csrf_of(board.text), "ticket_id": str(ticket_id), "user_id": str(people.agent.id),
            "expected_assignee_id": "0"}
    r = await client.post("/console/board/reassign", data=form)
    assert r.status_code == 409
    assert "anna holds this ticket now" in r.text and "Reassign it to agent anyway?" in r.text
    assert f'name="expected_assignee_id" value="{anna.id}"' in r.text and 'id="confirm-reassign"' in r.text
    assert (await ticket_row(sessionmaker, number)).assignee_id == anna.id  # nothing changed silently

    bus = console_app.state.switchboard.bus
    async with bus.subscribe(Topic.TICKETS) as events:
        r = await client.post("/console/board/reassign", data={**form, "csrf_token": csrf_of(r.text),
                                                               "expected_assignee_id": str(anna.id)})
        assert r.status_code == 303
        payloads = [events.get_nowait()[1] for _ in range(events.qsize())]
    assert (await ticket_row(sessionmaker, number)).assignee_id == people.agent.id
    # anna is told, as on a take-over.
    assert any(p.get("kind") == "taken_over" and p["previous_assignee_id"] == anna.id for p in payloads), payloads
    # The board as now shown reassigns without asking.
    board = await client.get("/console/board")
    r = await client.post("/console/board/reassign", data={
        "csrf_token": csrf_of(board.text), "ticket_id": str(ticket_id), "user_id": "",
        "expected_assignee_id": str(people.agent.id)})
    assert r.status_code == 303 and (await ticket_row(sessionmaker, number)).assignee_id is None


async def test_assigning_from_a_ticket_page_that_showed_nobody_never_overrides_a_new_holder(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    number = await new_ticket(client)
    url = f"/console/tickets/{number}"
    anna, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    await login(client, "super@test.example")
    stale = await client.get(url)
    assert re.search(r'action="[^"]+/assign".*?name="expected_assignee_id" value="0"', stale.text, re.S)
    async with signed_in(console_app, "anna@test.example") as anna_client:
        await post_form(anna_client, url, f"{url}/take", {})
    r = await client.post(f"{url}/assign", data={"csrf_token": csrf_of(stale.text), "user_id": str(people.agent.id),
                                                  "expected_assignee_id": "0"})
    assert r.status_code == 303
    assert (await ticket_row(sessionmaker, number)).assignee_id == anna.id
    page = await client.get(url)  # the flash names who holds it now
    assert "flash-error" in page.text and "anna" in page.text
