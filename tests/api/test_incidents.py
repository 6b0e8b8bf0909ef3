"""Incidents over the API: a supervisor or a key with incidents:write opens, lists, reads and resolves them (audited);
agents and other keys are refused; bad bodies get a 4xx with the reason."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.customers.models import Customer
from core.users.models import User

Auth = tuple[User, dict[str, str]]
OUTAGE = {"title": "Fibre cut", "message_en": "No internet in the north, fixing.", "message_ru": "Нет интернета.",
          "intents": ["no_internet"]}


async def make_customer(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s, s.begin():
        row = Customer(name="Anna", language="ru")
        s.add(row)
        await s.flush()
        return row.id


async def test_open_list_read_resolve_audited(app_client: httpx.AsyncClient, supervisor: Auth, agent: Auth,
                                              sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna = await make_customer(sessionmaker)
    r = await app_client.put("/contracts/N-1", headers=supervisor[1], json={
        "customer": {"id": anna}, "start_date": "2026-01-01", "end_date": "2028-01-01", "region": "MSK/North/k-1"})
    assert r.status_code == 201 and r.json()["region"] == "msk/north/k-1"
    r = await app_client.post("/incidents", json={**OUTAGE, "area": "msk/north"}, headers=supervisor[1])
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["status"] == "open" and incident["affected_count"] == 1 and incident["area"] == "msk/north"
    listed = (await app_client.get("/incidents?status=open", headers=supervisor[1])).json()
    assert [i["id"] for i in listed["items"]] == [incident["id"]] and listed["next_before"] is None
    detail = (await app_client.get(f"/incidents/{incident['id']}", headers=supervisor[1])).json()
    assert detail["linked_count"] == 0 and detail["tickets"] == []
    r = await app_client.post(f"/incidents/{incident['id']}/resolve", json={"resolution_en": "Fixed."},
                              headers=supervisor[1])
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    r = await app_client.post(f"/incidents/{incident['id']}/resolve", json={}, headers=supervisor[1])
    assert r.status_code == 409 and r.json()["details"]["reason"] == "already_resolved"
    assert (await app_client.get("/incidents?status=open", headers=supervisor[1])).json()["items"] == []
    async with sessionmaker() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "incident")
                                   .order_by(AuditEntry.id))).all()
    # The broadcast job of the running app may notify the affected customer between the two (its own entry).
    assert [a for a in actions if a != "incident.broadcast"] == ["incident.open", "incident.resolve"]
    # Agents may not.
    assert (await app_client.get("/incidents", headers=agent[1])).status_code == 403
    assert (await app_client.post("/incidents", json={**OUTAGE, "customers": [anna]},
                                  headers=agent[1])).status_code == 403


async def test_a_key_with_incidents_write_opens_one_and_other_keys_cannot(
        app_client: httpx.AsyncClient, admin: Auth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna = await make_customer(sessionmaker)
    keys = {}
    for name, scope in (("monitoring", "incidents:write"), ("orders", "orders:write")):
        r = await app_client.post("/admin/api-keys", json={"name": name, "scopes": [scope]}, headers=admin[1])
        assert r.status_code == 201, r.text
        keys[name] = {"X-Api-Key": r.json()["key"]}
    r = await app_client.post("/incidents", json={**OUTAGE, "customers": [anna]}, headers=keys["monitoring"])
    assert r.status_code == 201, r.text
    assert (await app_client.get("/incidents", headers=keys["orders"])).status_code == 403
    async with sessionmaker() as s:
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "incident.open"))).one()
    assert entry.actor_user_id is None and entry.data["api_key"] == "monitoring"


async def test_bad_bodies_are_refused_with_a_reason(app_client: httpx.AsyncClient, supervisor: Auth,
                                                    sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bad = [
        OUTAGE,  # neither an area nor customers
        {**OUTAGE, "area": "msk//north"},
        {**OUTAGE, "area": "x" * 5000},
        {**OUTAGE, "area": "msk", "intents": []},
        {**OUTAGE, "area": "msk", "intents": ["DROP TABLE"]},
        {**OUTAGE, "area": "msk", "message_en": "   "},
        {**OUTAGE, "customers": ["1"]},
        {**OUTAGE, "customers": list(range(1, 10_002))},
        {**OUTAGE, "area": "msk", "extra": 1},
    ]
    for body in bad:
        r = await app_client.post("/incidents", json=body, headers=supervisor[1])
        assert r.status_code == 422, (body, r.text)
    r = await app_client.post("/incidents", json={**OUTAGE, "customers": [2_000_000]}, headers=supervisor[1])
    assert r.status_code == 422 and r.json()["details"]["customers"] == [2_000_000]
    r = await app_client.post("/incidents", json={**OUTAGE, "area": "msk", "alert_id": 12345}, headers=supervisor[1])
    assert r.status_code == 404
    assert (await app_client.get("/incidents/99999", headers=supervisor[1])).status_code == 404
    assert (await app_client.get("/incidents/0", headers=supervisor[1])).status_code == 422
    assert (await app_client.post("/incidents/99999/resolve", json={}, headers=supervisor[1])).status_code == 404
