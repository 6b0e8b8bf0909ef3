"""Preferences and consent over the API: changed fields only, a consent change logged with where and by whom, bad
input refused with the reason, an erased customer's refused; integration keys with customers:read read them."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.customers.models import Customer
from core.users.models import User

Auth = tuple[User, dict[str, str]]


async def new_customer(sessionmaker: async_sessionmaker[AsyncSession], erased: bool = False) -> int:
    async with sessionmaker() as s, s.begin():
        row = Customer(name="Anna", language="ru", erased_at=datetime.now(UTC) if erased else None)
        s.add(row)
        await s.flush()
        return row.id


async def test_preferences_change_and_consent_is_logged(app_client: httpx.AsyncClient, agent: Auth, admin: Auth,
                                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    cid = await new_customer(sessionmaker)
    url = f"/customers/{cid}/preferences"
    r = await app_client.get(url, headers=agent[1])
    assert r.json() == {"preferred_channel": None, "language": "ru", "quiet_from": None, "quiet_until": None,
                        "time_zone": None, "consent_notices": True, "consent_marketing": False}
    r = await app_client.patch(url, json={"preferred_channel": "email", "consent_notices": False,
                                          "note": "customer's e-mail of 30.11"}, headers=agent[1])
    assert r.status_code == 200 and r.json()["preferred_channel"] == "email" and r.json()["language"] == "ru"
    r = await app_client.patch(url, json={"consent_notices": False}, headers=agent[1])  # no change: no log entry
    assert r.status_code == 200
    log = (await app_client.get(f"/customers/{cid}/consent-log", headers=agent[1])).json()
    assert [(e["kind"], e["granted"], e["source"], e["actor_user_id"], e["note"]) for e in log] == [
        ("notices", False, "api", agent[0].id, "customer's e-mail of 30.11")]
    key = (await app_client.post("/admin/api-keys", json={"name": "crm", "scopes": ["customers:read"]},
                                 headers=admin[1])).json()["key"]
    r = await app_client.get(url, headers={"X-Api-Key": key})
    assert r.status_code == 200 and r.json()["consent_notices"] is False


async def test_bad_preferences_are_refused_with_the_reason(app_client: httpx.AsyncClient, agent: Auth,
                                                           sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    cid = await new_customer(sessionmaker)
    url = f"/customers/{cid}/preferences"
    for body in ({"preferred_channel": "fax"}, {"quiet_from": "25:00", "quiet_until": "08:00"},
                 {"time_zone": "Mars/Olympus"}, {"language": "de"}, {"quiet_from": "22:00"}, {"surprise": 1}):
        r = await app_client.patch(url, json=body, headers=agent[1])
        assert r.status_code == 422, (body, r.text)
    gone = await new_customer(sessionmaker, erased=True)
    r = await app_client.patch(f"/customers/{gone}/preferences", json={"consent_marketing": True}, headers=agent[1])
    assert r.status_code == 409 and r.json()["details"]["reason"] == "erased"
    assert (await app_client.get("/customers/999999/preferences", headers=agent[1])).status_code == 404


async def test_order_notice_templates_over_the_api(app_client: httpx.AsyncClient, agent: Auth, admin: Auth) -> None:
    url = "/admin/order-notices"
    r = await app_client.put(f"{url}/shipped", json={"text_en": " Order {order} left: {status}. ",
                                                     "text_ru": "Заказ {order} отправлен."}, headers=admin[1])
    assert r.status_code == 200, r.text
    assert r.json()["text_en"] == "Order {order} left: {status}." and not r.json()["internal"]
    assert (await app_client.put(f"{url}/picking", json={"internal": True}, headers=admin[1])).status_code == 200
    r = await app_client.put(f"{url}/shipped", json={"text_en": "Sent {order}", "text_ru": ""}, headers=admin[1])
    assert r.json()["text_ru"] is None  # an empty text falls back to the generic notice
    listed = (await app_client.get(url, headers=admin[1])).json()
    assert [(t["status"], t["internal"], t["text_en"]) for t in listed] == [
        ("picking", True, None), ("shipped", False, "Sent {order}")]

    r = await app_client.put(f"{url}/x", json={"text_en": "Hi {name}"}, headers=admin[1])
    assert r.status_code == 422 and "{name}" in r.text
    r = await app_client.put(f"{url}/x", json={"text": "Hi"}, headers=admin[1])
    assert r.status_code == 422 and "text" in r.text
    assert (await app_client.put(f"{url}/{'s' * 65}", json={}, headers=admin[1])).status_code == 422
    assert (await app_client.put(f"{url}/a%00b", json={}, headers=admin[1])).status_code == 422
    assert (await app_client.put(f"{url}/x", json={"text_ru": "a\u0000"}, headers=admin[1])).status_code == 422
    assert (await app_client.put(f"{url}/x", json={}, headers=agent[1])).status_code == 403
    assert (await app_client.get(url, headers=agent[1])).status_code == 403
