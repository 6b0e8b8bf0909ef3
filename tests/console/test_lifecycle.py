"""Console: admins manage API keys (shown once, revocable) and order-notice templates; the customer page shows the
customer's contracts and edits preferences and consents, each consent change in the log (RU/EN)."""

from __future__ import annotations

import html
import re
from datetime import date

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.apikeys.models import ApiKey
from core.consent.models import ConsentChange, OrderNoticeTemplate
from core.contracts.models import Contract, ContractStatus
from core.customers.models import Customer
from tests.console.conftest import People, login, post_form
from tests.console.test_intents import flash_after

KEYS = "/console/admin/api-keys"


async def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    page = await client.get(KEYS)
    assert page.status_code == 200 and 'data-api-key="environment"' in page.text
    r = await post_form(client, KEYS, KEYS, {"name": "Order system", "scopes": ["orders:write", "customers:read"]})
    assert r.status_code == 200
    key = html.unescape(re.search(r"<code class=\"wrap\" data-key>([^<]+)</code>", r.text).group(1))  # type: ignore[union-attr]
    assert key.startswith("sbk_")
    again = await client.get(KEYS)
    assert key not in again.text and "Order system" in again.text
    async with sessionmaker() as s:
        row = (await s.scalars(select(ApiKey))).one()
    assert row.scopes == ["customers:read", "orders:write"]
    # A key that works until it is revoked from the console.
    assert (await client.put("/orders/ORD-200300", json={"status": "new"},
                             headers={"X-Api-Key": key})).status_code == 201
    r = await post_form(client, KEYS, f"{KEYS}/{row.id}/revoke", {})
    assert await flash_after(client, r) == ("info", "The key is revoked.")
    assert (await client.put("/orders/ORD-200300", json={"status": "new"},
                             headers={"X-Api-Key": key})).status_code == 401
    # A key with no scope is refused with the reason.
    r = await post_form(client, KEYS, KEYS, {"name": "Nothing"})
    assert r.status_code in (303, 422)


async def test_agents_cannot_reach_the_key_page(client: httpx.AsyncClient, people: People) -> None:
    await login(client, "agent@test.example")
    r = await client.get(KEYS)
    assert r.status_code in (303, 403)


async def test_order_notice_templates_are_edited_by_admins(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    page = "/console/admin/order-notices"
    r = await post_form(client, page, page, {"status": "shipped", "text_en": "Order {order} left: {status}.",
                                             "text_ru": "Заказ {order} отправлен."})
    assert (await flash_after(client, r))[0] == "info"
    r = await post_form(client, page, page, {"status": "picking", "internal": "on"})
    r = await post_form(client, page, page, {"status": "x", "text_en": "Hi {name}"})
    kind, text = await flash_after(client, r)
    assert kind == "error" and "{name}" in text
    async with sessionmaker() as s:
        rows = {t.status: t for t in (await s.scalars(select(OrderNoticeTemplate))).all()}
    assert set(rows) == {"shipped", "picking"} and rows["picking"].internal and not rows["shipped"].internal


async def test_the_customer_page_shows_contracts_and_edits_preferences_with_a_consent_log(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        customer = Customer(name="Anna", language="ru")
        s.add(customer)
        await s.flush()
        s.add(Contract(number="12345678", customer_id=customer.id, tariff="Home 500", services=["internet"],
                       start_date=date(2026, 1, 1), end_date=date(2027, 1, 31), auto_renewal=False,
                       status=ContractStatus.terminating))
        customer_id = customer.id
    await login(client, "agent@test.example")
    url = f"/console/customers/{customer_id}"
    page = await client.get(url)
    assert page.status_code == 200 and 'data-contract="12345678"' in page.text and "31.01.2027" in page.text
    r = await post_form(client, url, f"{url}/preferences", {
        "preferred_channel": "telegram", "language": "en", "quiet_from": "21:00", "quiet_until": "08:00",
        "time_zone": "Asia/Yekaterinburg", "consent_marketing": "on", "note": "asked by phone"})
    assert (await flash_after(client, r))[0] == "info"
    async with sessionmaker() as s:
        row = await s.get(Customer, customer_id)
        log = (await s.scalars(select(ConsentChange).order_by(ConsentChange.id))).all()
    assert row is not None and (row.preferred_channel, row.quiet_from, row.time_zone) == (
        "telegram", "21:00", "Asia/Yekaterinburg")
    assert not row.consent_notices and row.consent_marketing
    assert [(e.kind.value, e.granted, e.source, e.actor_user_id, e.note) for e in log] == [
        ("notices", False, "console", people.agent.id, "asked by phone"),
        ("marketing", True, "console", people.agent.id, "asked by phone")]
    page = await client.get(url)
    assert "asked by phone" in page.text
    # Bad input: one end of the quiet hours, an unknown zone - refused with the reason, nothing changed.
    for bad in ({"quiet_from": "21:00"}, {"time_zone": "Mars/Olympus"}, {"preferred_channel": "fax"}):
        r = await post_form(client, url, f"{url}/preferences", bad)
        assert (await flash_after(client, r))[0] == "error"
    async with sessionmaker() as s:
        assert len((await s.scalars(select(ConsentChange))).all()) == 2


async def test_a_nul_in_a_console_form_is_a_clear_422(client: httpx.AsyncClient, people: People, db_url: str) -> None:
    await login(client, "admin@test.example")
    page = "/console/admin/order-notices"
    r = await post_form(client, page, page, {"status": "shipped", "text_en": "Order \u0000 left"})
    if db_url.startswith("postgresql"):
        assert r.status_code == 422 and "NUL" in r.text and "уберите" in r.text
    else:
        assert r.status_code == 303
