"""Console: a supervisor merges customers and undoes a merge on the customer page, reviews suggested duplicates;
an admin downloads the export archive and erases; every opening of the profile is audited (RU/EN)."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.customers.models import ChannelIdentity, Customer
from tests.conftest import REST_HEADERS
from tests.console.conftest import People, login, post_form
from tests.console.test_intents import flash_after


async def customer(client: httpx.AsyncClient, ext: str, sender: dict[str, str]) -> int:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json={"external_message_id": ext, "sender": sender, "text": "hello"})
    assert r.status_code == 201, r.text
    return int(r.json()["ticket_id"])


async def customer_ids(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessionmaker() as s:
        return list(await s.scalars(select(Customer.id).order_by(Customer.id)))


async def test_merge_unmerge_and_duplicates_in_the_console(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(client, "1", {"external_id": "a", "name": "Anna", "email": "anna@example.ru"})
    await customer(client, "2", {"external_id": "b", "name": "Anna K", "email": "ANNA@Example.ru"})
    a, b = await customer_ids(sessionmaker)
    await login(client, "super@test.example")
    page = await client.get("/console/customers/duplicates")
    assert page.status_code == 200 and 'data-key="email:anna@example.ru"' in page.text
    r = await post_form(client, f"/console/customers/{a}", f"/console/customers/{a}/merge", {"source": f"#{b}"})
    assert await flash_after(client, r) == ("info", "Customers merged")
    page = await client.get(f"/console/customers/{a}")
    assert page.text.count("data-identity=") == 2 and "data-merge=" in page.text
    assert 'data-key="email:' not in (await client.get("/console/customers/duplicates")).text
    async with sessionmaker() as s:
        merge_id = (await s.scalars(select(AuditEntry.data).where(AuditEntry.action == "customer.merge"))).one()[
            "merge_id"]
    r = await post_form(client, f"/console/customers/{a}", f"/console/customers/merges/{merge_id}/unmerge", {})
    assert r.headers["location"] == f"/console/customers/{b}"
    async with sessionmaker() as s:
        owners = dict((await s.execute(select(ChannelIdentity.external_id, ChannelIdentity.customer_id))).all())
    assert owners == {"a": a, "b": b}
    # Un-merged: never suggested as duplicates again.
    assert 'data-key="email:' not in (await client.get("/console/customers/duplicates")).text
    # Bad input: merge into itself, a number that is not one.
    r = await post_form(client, f"/console/customers/{a}", f"/console/customers/{a}/merge", {"source": str(a)})
    assert r.status_code in (303, 409)
    r = await post_form(client, f"/console/customers/{a}", f"/console/customers/{a}/merge", {"source": "abc"})
    assert r.status_code in (303, 422)


async def test_a_dismissed_pair_is_not_suggested_and_agents_cannot_merge(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(client, "1", {"external_id": "a", "phone": "+7 900 111-22-33"})
    await customer(client, "2", {"external_id": "b", "phone": "8 (900) 1112233"})
    a, b = await customer_ids(sessionmaker)
    await login(client, "agent@test.example")
    assert (await client.get("/console/customers/duplicates")).status_code in (303, 403)
    page = await client.get(f"/console/customers/{a}")
    assert page.status_code == 200 and 'id="merge-form"' not in page.text and 'id="erase-form"' not in page.text
    client.cookies.clear()
    await login(client, "super@test.example")
    page = await client.get("/console/customers/duplicates")
    assert 'data-key="phone:79001112233"' in page.text
    r = await post_form(client, "/console/customers/duplicates", "/console/customers/duplicates/dismiss",
                        {"a": str(a), "b": str(b)})
    assert await flash_after(client, r) == ("info", "Marked as different people")
    assert "data-key=" not in (await client.get("/console/customers/duplicates")).text
    async with sessionmaker() as s:
        views = await s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "customer.view"))
    assert views == 1  # the agent's opening of the profile


async def test_an_admin_exports_and_erases_from_the_customer_page(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(client, "1", {"external_id": "a", "name": "Boris Secret", "email": "boris@example.ru"})
    [a] = await customer_ids(sessionmaker)
    await login(client, "admin@test.example")
    page = await client.get(f"/console/customers/{a}")
    assert 'id="erase-form"' in page.text and f"/console/customers/{a}/export.zip" in page.text
    r = await client.get(f"/console/customers/{a}/export.zip")
    assert r.status_code == 200
    assert json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("customer.json"))["customer"]["name"] == \
        "Boris Secret"
    # The wrong confirmation erases nothing.
    r = await post_form(client, f"/console/customers/{a}", f"/console/customers/{a}/erase", {"confirm": "1234"})
    assert r.status_code in (303, 422)
    async with sessionmaker() as s:
        assert (await s.get(Customer, a)).name == "Boris Secret"  # type: ignore[union-attr]
    r = await post_form(client, f"/console/customers/{a}", f"/console/customers/{a}/erase", {"confirm": f"#{a}"})
    assert await flash_after(client, r) == ("info", "Personal data erased")
    page = await client.get(f"/console/customers/{a}")
    assert "Boris" not in page.text and 'id="erase-form"' not in page.text
    async with sessionmaker() as s:
        actions = list(await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("customer.%"))
                                       .order_by(AuditEntry.id)))
    # Each opening of the page (the two forms' pages, the page after the erasure, twice) and the export.
    assert actions == ["customer.view", "customer.export", "customer.view", "customer.view", "customer.erase",
                       "customer.view", "customer.view"]
