"""Integration keys: created by admins (shown once, hashed at rest), scoped, revocable, audited; the environment's
REST key still works and is listed first."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.apikeys.models import ApiKey
from core.audit.models import AuditEntry
from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message

Auth = tuple[User, dict[str, str]]


async def create(client: httpx.AsyncClient, admin: Auth, name: str, *scopes: str) -> dict[str, object]:
    r = await client.post("/admin/api-keys", json={"name": name, "scopes": list(scopes)}, headers=admin[1])
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def test_admins_create_keys_shown_once_and_stored_as_hashes(
        app_client: httpx.AsyncClient, admin: Auth, supervisor: Auth,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    created = await create(app_client, admin, "order system", "orders:write", "customers:read")
    key = str(created["key"])
    assert key.startswith("sbk_") and created["scopes"] == ["customers:read", "orders:write"]
    listed = (await app_client.get("/admin/api-keys", headers=admin[1])).json()
    assert [k["name"] for k in listed] == ["environment", "order system"]
    assert listed[0]["id"] is None and listed[0]["scopes"] == ["rest_channel"]
    assert all("key" not in k for k in listed) and key not in str(listed)
    async with sessionmaker() as s:
        row = (await s.scalars(select(ApiKey))).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in (row.prefix, row.name)
    # Only admins; a name once; a scope that does not exist is refused.
    r = await app_client.post("/admin/api-keys", json={"name": "x", "scopes": ["orders:write"]},
                              headers=supervisor[1])
    assert r.status_code == 403
    r = await app_client.post("/admin/api-keys", json={"name": "order system", "scopes": ["orders:write"]},
                              headers=admin[1])
    assert r.status_code == 409 and r.json()["details"]["reason"] == "duplicate_name"
    r = await app_client.post("/admin/api-keys", json={"name": "y", "scopes": ["everything"]}, headers=admin[1])
    assert r.status_code == 422
    r = await app_client.post("/admin/api-keys", json={"name": "y", "scopes": []}, headers=admin[1])
    assert r.status_code == 422


async def test_a_key_does_what_its_scopes_allow_until_revoked(
        app_client: httpx.AsyncClient, admin: Auth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    orders = await create(app_client, admin, "orders", "orders:write")
    reports = await create(app_client, admin, "bi", "reports:read")
    order_key = {"X-Api-Key": str(orders["key"])}
    r = await app_client.put("/orders/ORD-100200", json={"status": "new"}, headers=order_key)
    assert r.status_code == 201, r.text
    r = await app_client.post("/orders/ORD-100200/status", json={"status": "shipped"}, headers=order_key)
    assert r.status_code == 200 and r.json()["status"] == "shipped"
    # Not its scopes: the REST channel, the reports, contracts.
    r = await app_client.post("/channels/rest/messages", json=rest_message("k1", "hi"), headers=order_key)
    assert r.status_code == 403 and r.json()["details"]["scope"] == "rest_channel"
    r = await app_client.get("/reports/kpis?from=2026-11-01&to=2026-11-02", headers=order_key)
    assert r.status_code == 403
    r = await app_client.get("/reports/kpis?from=2026-11-01&to=2026-11-02",
                             headers={"X-Api-Key": str(reports["key"])})
    assert r.status_code == 200, r.text
    r = await app_client.put("/contracts/12345678", json={}, headers=order_key)
    assert r.status_code == 403
    # Revoked: refused at once, audited with the key's name.
    r = await app_client.post(f"/admin/api-keys/{orders['id']}/revoke", headers=admin[1])
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    r = await app_client.put("/orders/ORD-100200", json={"status": "new"}, headers=order_key)
    assert r.status_code == 401
    r = await app_client.post(f"/admin/api-keys/{orders['id']}/revoke", headers=admin[1])
    assert r.status_code == 409
    async with sessionmaker() as s:
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.entity_type.in_(["api_key", "order"]))
                                   .order_by(AuditEntry.id))).all()
    actions = [(e.action, e.data.get("name") or e.data.get("api_key")) for e in entries]
    assert actions == [("api_key.create", "orders"), ("api_key.create", "bi"), ("order.upsert", "orders"),
                       ("order.upsert", "orders"), ("api_key.revoke", "orders")]
    assert entries[0].actor_user_id == admin[0].id


async def test_the_rest_channel_takes_the_environment_key_and_rest_channel_keys(
        app_client: httpx.AsyncClient, admin: Auth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    r = await app_client.post("/channels/rest/messages", json=rest_message("e1", "hello"), headers=REST_HEADERS)
    assert r.status_code == 201, r.text
    chat = await create(app_client, admin, "chat widget", "rest_channel")
    r = await app_client.post("/channels/rest/messages", json=rest_message("e2", "hello"),
                              headers={"X-Api-Key": str(chat["key"])})
    assert r.status_code == 201, r.text
    r = await app_client.get("/channels/rest/replies", headers={"X-Api-Key": str(chat["key"])})
    assert r.status_code == 200
    async with sessionmaker() as s:
        row = (await s.scalars(select(ApiKey))).one()
    assert row.last_used_at is not None
    listed = (await app_client.get("/admin/api-keys", headers=admin[1])).json()
    assert listed[1]["last_used_at"] is not None


async def test_a_bearer_token_still_works_where_a_key_may_be_used(app_client: httpx.AsyncClient, supervisor: Auth,
                                                                   agent: Auth) -> None:
    r = await app_client.put("/orders/ORD-100300", json={"status": "new"}, headers=supervisor[1])
    assert r.status_code == 201
    r = await app_client.put("/orders/ORD-100300", json={"status": "new"}, headers=agent[1])
    assert r.status_code == 403
    r = await app_client.put("/orders/ORD-100300", json={"status": "new"}, headers={"X-Api-Key": "sbk_wrong"})
    assert r.status_code == 401
