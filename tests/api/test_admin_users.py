"""Updating a user through the REST API: the same service and rules as the console's form."""

from __future__ import annotations

from typing import Any

import httpx

from core.users.models import User


async def _audit(client: httpx.AsyncClient, headers: dict[str, str], user_id: int) -> list[dict[str, Any]]:
    r = await client.get("/admin/audit", headers=headers, params={"entity_type": "user", "entity_id": str(user_id)})
    return [e["data"] for e in r.json() if e["action"] == "user.update"]


async def test_an_admin_cannot_demote_or_deactivate_themselves(app_client: httpx.AsyncClient,
                                                               admin: tuple[User, dict[str, str]]) -> None:
    me, h = admin
    for body in ({"role": "agent"}, {"role": "supervisor", "name": "x"}, {"is_active": False}):
        r = await app_client.patch(f"/admin/users/{me.id}", headers=h, json=body)
        assert r.status_code == 422 and "yourself" in r.json()["message"], r.text
    r = await app_client.patch(f"/admin/users/{me.id}", headers=h, json={"role": "admin", "is_active": True,
                                                                          "name": " Chief "})
    assert r.status_code == 200 and r.json()["name"] == "Chief"
    assert await _audit(app_client, h, me.id) == [{"name": "Chief"}]


async def test_an_admin_changes_another_user(app_client: httpx.AsyncClient, admin: tuple[User, dict[str, str]],
                                             agent: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    user = agent[0]
    r = await app_client.patch(f"/admin/users/{user.id}", headers=h,
                               json={"role": "supervisor", "queue": "billing", "capacity": 4})
    assert r.status_code == 200, r.text
    queues = {q["slug"]: q["id"] for q in (await app_client.get("/admin/queues", headers=h)).json()}
    assert (r.json()["role"], r.json()["team_id"], r.json()["capacity"]) == ("supervisor", queues["billing"], 4)
    # An empty queue takes the user out of queues, as it leaves a new user without one.
    r = await app_client.patch(f"/admin/users/{user.id}", headers=h, json={"queue": ""})
    assert r.status_code == 200 and r.json()["team_id"] is None
    assert (await app_client.patch(f"/admin/users/{user.id}", headers=h, json={"queue": "nowhere"})).status_code == 404
    assert (await app_client.patch(f"/admin/users/{user.id}", headers=h, json={"name": "  "})).status_code == 422
    assert await _audit(app_client, h, user.id) == [
        {"queue": ""}, {"role": "supervisor", "queue": "billing", "capacity": "4"}]
    r = await app_client.patch(f"/admin/users/{user.id}", headers=agent[1], json={"role": "admin"})
    assert r.status_code == 403
