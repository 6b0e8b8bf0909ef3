"""Tags over the API: put on tickets by name (a new name creates the tag), filtered by alone and with the other
filters and the search, paged by cursor, kept by a customer's erasure, listed in the export, managed by supervisors,
every change audited; bad names and filters refused with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.customers.models import Customer
from core.tags.models import TicketTag
from core.tickets.models import AuthorKind, Direction, Message, Ticket, TicketStatus
from core.users.models import Team, User

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


async def add_tickets(sessionmaker: async_sessionmaker[AsyncSession], n: int, *, name: str = "Тег Тестов",
                      text: str = "hello", status: TicketStatus = TicketStatus.open) -> list[int]:
    async with sessionmaker() as s, s.begin():
        customer = Customer(name=name, email=f"{abs(hash(name)) % 10**8}@tags.example")
        s.add(customer)
        team_id = await s.scalar(select(Team.id).where(Team.slug == "technical"))
        await s.flush()
        made = []
        for i in range(n):
            at = T0 + timedelta(minutes=i // 2)  # ties on the sort key, broken by the id
            ticket = Ticket(customer_id=customer.id, subject=f"s{i}", status=status, channel="rest", team_id=team_id,
                            last_customer_message_at=at, created_at=at, updated_at=at)
            s.add(ticket)
            await s.flush()
            s.add(Message(ticket_id=ticket.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
                          channel="rest", text=text))
            made.append(ticket.id)
    return made


def ids(page: httpx.Response) -> list[int]:
    assert page.status_code == 200, page.text
    return [item["id"] for item in page.json()["items"]]


async def test_tags_on_tickets_filter_alone_and_with_the_other_filters(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
        supervisor: tuple[User, dict[str, str]], sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    _, sup = supervisor
    a, b, c = await add_tickets(sessionmaker, 3, text="роутер не работает")
    (done,) = await add_tickets(sessionmaker, 1, status=TicketStatus.resolved, text="счёт оплачен")
    added = await app_client.post(f"/tickets/T-{a:06d}/tags", json={"name": "  Спор по  счёту "}, headers=headers)
    assert added.status_code == 201, added.text
    dispute = added.json()
    assert dispute["name"] == "Спор по счёту" and dispute["colour"] == "grey"
    # The same name in another case and spacing (ё as е) is the same tag; tagging twice changes nothing.
    for ticket_id, name in ((b, "спор по СЧЕТУ"), (done, "Спор по счёту"), (a, "Спор по счёту")):
        again = await app_client.post(f"/tickets/{ticket_id}/tags", json={"name": name}, headers=headers)
        assert again.json()["id"] == dispute["id"]
    vip = (await app_client.post(f"/tickets/{a}/tags", json={"name": "VIP"}, headers=headers)).json()

    async def listed(**params: object) -> list[int]:
        return ids(await app_client.get("/tickets", params={"sort": "newest", **params}, headers=headers))

    assert await listed(tag="спор по счёту") == [done, b, a]
    assert await listed(tag="спор по счёту", status="open") == [b, a]
    assert await listed(tag=["спор по счёту", "vip"]) == [a]  # every tag named
    assert await listed(tag="VIP,Спор по счёту") == [a]  # comma-separated, as the console links them
    assert await listed(tag="vip", assignee="none", queue="technical") == [a]
    assert await listed(tag="vip", queue="billing") == []
    assert await listed(tag="nobody-uses-this") == []
    assert c not in await listed(tag="спор по счёту")
    # With the search: the text query and the tag both hold.
    found = await app_client.get("/tickets", params={"q": "роутер", "tag": "спор по счёту"}, headers=headers)
    assert sorted(ids(found)) == sorted([a, b])
    # The tags come with the list and with one ticket.
    items = {i["id"]: i for i in (await app_client.get("/tickets", params={"tag": "vip"}, headers=headers)
                                  ).json()["items"]}
    assert items[a]["tags"] == ["VIP", "Спор по счёту"]
    assert (await app_client.get(f"/tickets/{b}", headers=headers)).json()["tags"] == ["Спор по счёту"]
    assert [t["name"] for t in (await app_client.get(f"/tickets/T-{a:06d}/tags", headers=headers)).json()] == [
        "VIP", "Спор по счёту"]
    suggested = await app_client.get("/tags", params={"q": "сп"}, headers=headers)
    assert [t["name"] for t in suggested.json()] == ["Спор по счёту"]

    # Bad input: a 422 with the reason, nothing stored.
    for bad in ("", "   ", "x" * 51, "<script>", "a,b", "semi;colon"):
        refused = await app_client.post(f"/tickets/{a}/tags", json={"name": bad}, headers=headers)
        assert refused.status_code == 422, (bad, refused.text)
    too_many = await app_client.get("/tickets", params={"tag": [f"t{i}" for i in range(11)]}, headers=headers)
    assert too_many.status_code == 422 and "at most 10" in too_many.text
    assert (await app_client.get("/tickets", params={"tag": "y" * 60}, headers=headers)).status_code == 422
    assert (await app_client.post("/tickets/T-999999/tags", json={"name": "x"}, headers=headers)).status_code == 404
    assert (await app_client.post(f"/tickets/{a}/tags", json={"name": "x", "extra": 1},
                                  headers=headers)).status_code == 422

    # The list is the supervisors' to keep: agents may not rename, recolour or delete.
    assert (await app_client.patch(f"/tags/{vip['id']}", json={"name": "V"}, headers=headers)).status_code == 403
    assert (await app_client.delete(f"/tags/{vip['id']}", headers=headers)).status_code == 403
    renamed = await app_client.patch(f"/tags/{vip['id']}", json={"name": "Key client", "colour": "purple"},
                                     headers=sup)
    assert renamed.status_code == 200 and renamed.json()["colour"] == "purple"
    assert (await app_client.get(f"/tickets/{a}", headers=headers)).json()["tags"] == ["Key client",
                                                                                    "Спор по счёту"]
    assert await listed(tag="key client") == [a]
    assert await listed(tag="vip") == []
    clash = await app_client.patch(f"/tags/{vip['id']}", json={"name": "СПОР ПО СЧЁТУ"}, headers=sup)
    assert clash.status_code == 409
    assert (await app_client.patch(f"/tags/{vip['id']}", json={"colour": "pink"}, headers=sup)).status_code == 422
    assert (await app_client.post("/tags", json={"name": "Спор по счёту"}, headers=sup)).status_code == 409

    removed = await app_client.delete(f"/tickets/{a}/tags/{dispute['id']}", headers=headers)
    assert removed.status_code == 204
    assert await listed(tag="спор по счёту") == [done, b]
    assert (await app_client.delete(f"/tags/{vip['id']}", headers=sup)).status_code == 204
    assert (await app_client.get(f"/tickets/{a}", headers=headers)).json()["tags"] == []
    assert (await app_client.delete(f"/tickets/{a}/tags/{vip['id']}", headers=headers)).status_code == 404

    async with sessionmaker() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("%tag%"))
                                   .order_by(AuditEntry.id))).all()
        assert actions == ["tag.create", "ticket.tag_add", "ticket.tag_add", "ticket.tag_add", "tag.create",
                           "ticket.tag_add", "tag.update", "ticket.tag_remove", "tag.delete"]
        assert (await s.scalar(select(TicketTag.tag_id).where(TicketTag.tag_id == vip["id"]))) is None


async def test_pages_of_a_tag_filter_follow_the_cursor_without_skipping_or_repeating(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    made = await add_tickets(sessionmaker, 23)
    tagged = set(made[::2])
    for ticket_id in tagged:
        assert (await app_client.post(f"/tickets/{ticket_id}/tags", json={"name": "outage"},
                                      headers=headers)).status_code == 201
    for sort in ("waiting", "newest"):
        seen: list[int] = []
        cursor: str | None = None
        for _ in range(10):
            page = (await app_client.get("/tickets", params={"tag": "outage", "limit": 4, "sort": sort,
                                                            **({"cursor": cursor} if cursor else {})},
                                         headers=headers)).json()
            assert page["total"] == len(tagged)
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) and set(seen) == tagged, sort


async def test_erasure_keeps_the_tags_and_the_export_lists_them(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]], admin: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    _, adm = admin
    (ticket_id,) = await add_tickets(sessionmaker, 1, name="Анна Стёртая")
    await app_client.post(f"/tickets/{ticket_id}/tags", json={"name": "complaint"}, headers=headers)
    async with sessionmaker() as s:
        customer_id = await s.scalar(select(Ticket.customer_id).where(Ticket.id == ticket_id))
    export = (await app_client.get(f"/customers/{customer_id}/export", headers=adm)).json()
    assert export["tickets"][0]["tags"] == ["complaint"]
    assert (await app_client.post(f"/customers/{customer_id}/erase", headers=adm)).status_code == 200
    # The team's classification stays with the anonymised ticket, like its intent and status: the statistics.
    after = (await app_client.get(f"/tickets/{ticket_id}", headers=headers)).json()
    assert after["tags"] == ["complaint"] and after["subject"] == ""
    assert ids(await app_client.get("/tickets", params={"tag": "complaint"}, headers=headers)) == [ticket_id]


async def test_a_merge_carries_the_tags_over_once(
        app_client: httpx.AsyncClient, agent: tuple[User, dict[str, str]],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    _, headers = agent
    source, target = await add_tickets(sessionmaker, 2, name="Слияние Тегов")
    for ticket_id, names in ((source, ("billing", "vip", "callback")), (target, ("vip",))):
        for name in names:
            assert (await app_client.post(f"/tickets/{ticket_id}/tags", json={"name": name},
                                          headers=headers)).status_code == 201
    merged = await app_client.post(f"/tickets/{target}/merge", json={"source_ticket_id": source}, headers=headers)
    assert merged.status_code == 200, merged.text
    # The target has each tag once (the one it had is not doubled); the merged ticket keeps its own.
    assert merged.json()["tags"] == ["billing", "callback", "vip"]
    async with sessionmaker() as s:
        links = (await s.execute(select(TicketTag.ticket_id, TicketTag.created_at))).all()
    assert sorted(t for t, _ in links) == [source] * 3 + [target] * 3
    assert all(at.tzinfo is not None for _, at in links)
    assert ids(await app_client.get("/tickets", params={"tag": "callback"}, headers=headers)) == [target]
