"""Authentication and role checks on every kind of route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import REST_HEADERS

ANON_ROUTES = [("GET", "/tickets"), ("GET", "/tickets/1"), ("POST", "/tickets/1/take"), ("GET", "/customers/1"),
               ("GET", "/admin/users"), ("GET", "/outbox"), ("PUT", "/orders/ORD-1"), ("GET", "/auth/me")]
ADMIN_ONLY = [("POST", "/admin/users", {"email": "x@y.z", "name": "x", "password": "password-123"}),
              ("GET", "/admin/audit", None), ("GET", "/admin/quarantine", None),
              ("POST", "/admin/queues", {"slug": "vip", "name": "VIP"}),
              ("PUT", "/admin/routes/roaming", {"queue": "billing"}), ("GET", "/customers/1/export", None)]
SUPERVISOR_ONLY = [("GET", "/admin/users", None), ("GET", "/outbox", None),
                   ("PUT", "/orders/ORD-1", {"status": "new"})]


@pytest.mark.parametrize(("method", "path"), ANON_ROUTES)
async def test_anonymous_gets_401(app_client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await app_client.request(method, path)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_bad_token_gets_401(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/tickets", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "invalid" in r.json()["message"]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY + SUPERVISOR_ONLY)
async def test_agent_cannot_reach_admin_routes(app_client: httpx.AsyncClient, agent: tuple[Any, dict[str, str]],
                                               method: str, path: str, body: Any) -> None:
    r = await app_client.request(method, path, headers=agent[1], json=body)
    assert r.status_code == 403
    assert "role" in r.json()["message"]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_supervisor_cannot_reach_admin_only_routes(app_client: httpx.AsyncClient,
                                                         supervisor: tuple[Any, dict[str, str]],
                                                         method: str, path: str, body: Any) -> None:
    r = await app_client.request(method, path, headers=supervisor[1], json=body)
    assert r.status_code == 403


async def test_login_logout_and_admin_creates_user(app_client: httpx.AsyncClient,
                                                   admin: tuple[Any, dict[str, str]]) -> None:
    r = await app_client.post("/admin/users", headers=admin[1],
                              json={"email": "New.Agent@Example.com", "name": "Нина", "password": "secret-pass-1",
                                    "role": "agent", "language": "ru", "queue": "billing"})
    assert r.status_code == 201, r.text
    r = await app_client.post("/auth/login", json={"email": "new.agent@example.com", "password": "wrong-pass"})
    assert r.status_code == 401
    r = await app_client.post("/auth/login", json={"email": "nobody@example.com", "password": "secret-pass-1"})
    assert r.status_code == 401
    r = await app_client.post("/auth/login", json={"email": "new.agent@example.com", "password": "secret-pass-1"})
    assert r.status_code == 200
    token = r.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = await app_client.get("/auth/me", headers=headers)
    assert me.json()["role"] == "agent" and me.json()["language"] == "ru"
    assert (await app_client.post("/auth/logout", headers=headers)).status_code == 204
    assert (await app_client.get("/auth/me", headers=headers)).status_code == 401
    audit = await app_client.get("/admin/audit", headers=admin[1], params={"entity_type": "user"})
    assert any(e["action"] == "user.create" for e in audit.json())


async def test_rest_channel_needs_its_api_key(app_client: httpx.AsyncClient) -> None:
    body = {"external_message_id": "1", "sender": {"external_id": "c"}, "text": "hi"}
    assert (await app_client.post("/channels/rest/messages", json=body)).status_code == 401
    r = await app_client.post("/channels/rest/messages", json=body, headers={"X-Api-Key": "wrong"})
    assert r.status_code == 401
    assert (await app_client.post("/channels/rest/messages", json=body, headers=REST_HEADERS)).status_code == 201
