"""Lists at scale: keyset cursors never skip or repeat a ticket while new ones arrive; counts stop at a cap; the
search answer says where each ticket matched; the console shows it escaped."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from itertools import count

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.customers.models import Customer
from core.tickets import repository
from core.tickets.models import AuthorKind, Direction, Message, Ticket, TicketStatus
from core.users.models import Team, User
from tests.console.conftest import login

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
_minutes = count()


async def add_tickets(sessionmaker: async_sessionmaker[AsyncSession], n: int, *, waited_since: datetime | None,
                      text: str = "hello", status: TicketStatus = TicketStatus.open) -> list[int]:
    async with sessionmaker() as s, s.begin():
        customer = Customer(name="Лист Тестов", email=None)
        s.add(customer)
        team_id = await s.scalar(select(Team.id).where(Team.slug == "technical"))
        await s.flush()
        made = []
        for _ in range(n):
            minute = next(_minutes)
            # Some customers wrote at the same moment (ties on the sort key), some never (nulls last).
            at = None if waited_since is None else waited_since + timedelta(minutes=minute // 3)
            ticket = Ticket(customer_id=customer.id, subject=f"t{minute}", status=status, channel="rest",
                            team_id=team_id, last_customer_message_at=at, created_at=at or T0,
                            updated_at=(at or T0) + timedelta(seconds=minute % 2), sla_due_at=at)
            s.add(ticket)
            await s.flush()
            s.add(Message(ticket_id=ticket.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
                          channel="rest", text=text))
            made.append(ticket.id)
    return made


@pytest.mark.parametrize("sort", ["waiting", "due", "newest", "updated"])
async def test_cursor_never_skips_or_repeats_while_tickets_arrive(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession], sort: str) -> None:
    _, headers = agent
    original = set(await add_tickets(sessionmaker, 25, waited_since=T0))
    original |= set(await add_tickets(sessionmaker, 5, waited_since=None))
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"sort": sort, "limit": "7", **({"cursor": cursor} if cursor else {})}
        page = (await app_client.get("/tickets", params=params, headers=headers)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        # New tickets arrive between every two pages: new customers writing now, and ones waiting since earlier.
        await add_tickets(sessionmaker, 3, waited_since=T0 + timedelta(days=1))
        await add_tickets(sessionmaker, 1, waited_since=None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 40
    assert len(seen) == len(set(seen)), "a ticket was shown twice"
    assert original <= set(seen), "a ticket was skipped"


async def test_offset_pages_still_work_and_count_is_reported(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    made = await add_tickets(sessionmaker, 12, waited_since=T0)
    first = (await app_client.get("/tickets", params={"limit": 5, "sort": "newest"}, headers=headers)).json()
    second = (await app_client.get("/tickets", params={"limit": 5, "offset": 5, "sort": "newest"},
                                   headers=headers)).json()
    assert [i["id"] for i in first["items"] + second["items"]] == sorted(made, reverse=True)[:10]
    assert first["total"] == 12 and not first["total_is_capped"]
    assert first["next_cursor"]


async def test_an_offset_past_the_cap_is_422_pointing_to_the_cursor(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    await add_tickets(sessionmaker, 2, waited_since=T0)
    at_cap = await app_client.get("/tickets", params={"offset": 10_000}, headers=headers)
    assert at_cap.status_code == 200 and at_cap.json()["items"] == []
    for params in ({"offset": 10_001}, {"offset": 100_000, "q": "hello"}):
        response = await app_client.get("/tickets", params=params, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        assert "cursor" in response.json()["message"]


async def test_bad_cursors_are_422(app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
                                   sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    await add_tickets(sessionmaker, 3, waited_since=T0)
    page = (await app_client.get("/tickets", params={"limit": 1, "sort": "newest"}, headers=headers)).json()
    huge = base64.urlsafe_b64encode(json.dumps(["newest", None, 2**63]).encode()).decode()
    naive = base64.urlsafe_b64encode(json.dumps(["updated", "2026-05-01T09:00:00", 1]).encode()).decode()
    for params in ({"cursor": "garbage!"}, {"cursor": "W10"}, {"cursor": page["next_cursor"], "sort": "waiting"},
                   {"cursor": huge, "sort": "newest"}, {"cursor": naive, "sort": "updated"},
                   {"cursor": page["next_cursor"], "sort": "newest", "q": "hello"}):
        response = await app_client.get("/tickets", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"] == "validation_failed"
    bad_range = await app_client.get("/tickets", params={"created_from": "2026-05-02T00:00:00Z",
                                                         "created_to": "2026-05-01T00:00:00Z"}, headers=headers)
    assert bad_range.status_code == 422


async def test_counts_stop_at_the_cap(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await add_tickets(sessionmaker, 7, waited_since=T0)
    async with sessionmaker() as s:
        assert await repository.count_capped(s, repository.visible(), cap=5) == 6
        assert await repository.count_capped(s, repository.visible(), cap=50) == 7
        user_id = 10**6
        mine, unassigned, queue, active, done = await repository.count_views(
            s, (TicketStatus.open,), (TicketStatus.closed,), user_id, None, cap=3)
    assert (mine, unassigned, queue, active, done) == (0, 4, 4, 4, 0)


async def test_search_answer_says_where_it_matched(app_client: httpx.AsyncClient,
                                                   agent: tuple[User, dict[str, str]],
                                                   sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    [ticket_id] = await add_tickets(sessionmaker, 1, waited_since=T0, text="Мой роутер сгорел <b>совсем</b>")
    page = (await app_client.get("/tickets", params={"q": "роутером"}, headers=headers)).json()
    assert [i["id"] for i in page["items"]] == [ticket_id]
    match = page["items"][0]["match"]
    assert match["source"] == "message" and match["message_id"]
    snippet = match["snippet"]
    assert [snippet[a:b] for a, b in match["highlights"]] == ["роутер"]
    assert page["next_cursor"] is None


async def test_console_search_shows_the_snippet_escaped(app_client: httpx.AsyncClient,
                                                        agent: tuple[User, dict[str, str]],
                                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    user, _ = agent
    await add_tickets(sessionmaker, 1, waited_since=T0, text="<img src=x onerror=alert(1)> роутера нет")
    await login(app_client, user.email)
    page = await app_client.get("/console/inbox", params={"view": "all", "q": "роутер"})
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<mark>роутера</mark>" in page.text
    assert 'data-source="message"' in page.text


async def test_console_filters_by_intent_and_local_dates(app_client: httpx.AsyncClient,
                                                         agent: tuple[User, dict[str, str]],
                                                         sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    user, _ = agent
    made = await add_tickets(sessionmaker, 4, waited_since=T0)
    # Created 30 April 20:59 and 21:00 UTC (the last minute of 30 April and the first of 1 May in Moscow, the
    # report time zone the form's dates are in), 2 May 20:59 and 21:00 UTC.
    moments = [datetime(2026, 4, 30, 20, 59, tzinfo=UTC), datetime(2026, 4, 30, 21, 0, tzinfo=UTC),
               datetime(2026, 5, 2, 20, 59, tzinfo=UTC), datetime(2026, 5, 2, 21, 0, tzinfo=UTC)]
    async with sessionmaker() as s, s.begin():
        for ticket_id, at, intent in zip(made, moments, ("billing", "internet_down", "internet_down", "internet_down"),
                                         strict=True):
            ticket = await s.get(Ticket, ticket_id)
            assert ticket is not None
            ticket.created_at, ticket.intent = at, intent
    numbers = [f"T-{i:06d}" for i in made]
    await login(app_client, user.email)

    def shown(text: str) -> list[str]:
        return [n for n in numbers if f">{n}<" in text]

    page = await app_client.get("/console/inbox", params={"view": "all", "created_from": "2026-04-30",
                                                          "created_to": "2026-05-02"})
    assert page.status_code == 200 and shown(page.text) == numbers[:3]
    # The form offers the intents and keeps what was chosen.
    assert '<option value="internet_down" selected>' not in page.text and 'name="created_from" value="2026-04-30"' \
        in page.text
    page = await app_client.get("/console/inbox", params={"view": "all", "intent": "internet_down",
                                                          "created_from": "2026-05-01", "created_to": "2026-05-02"})
    assert sorted(shown(page.text)) == sorted(numbers[1:3])
    assert '<option value="internet_down" selected>' in page.text
    assert "intent=internet_down" in page.text and "created_to=2026-05-02" in page.text  # the live refresh keeps them
    rows = await app_client.get("/console/inbox/rows", params={"view": "all", "intent": "billing"},
                                headers={"X-Requested-With": "fetch"})
    assert rows.status_code == 200 and shown(rows.text) == numbers[:1]
    # A date the form cannot have sent filters nothing rather than failing the page.
    page = await app_client.get("/console/inbox", params={"view": "all", "created_from": "30.04.2026"})
    assert page.status_code == 200 and sorted(shown(page.text)) == sorted(numbers)
