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


async def test_display_name_defaults_to_the_first_word_and_is_editable(
        app_client: httpx.AsyncClient, admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    r = await app_client.post("/admin/users", headers=h, json={
        "email": "anna@test.example", "name": "Anna Petrova", "password": "password-123"})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    assert (r.json()["display_name"], r.json()["shown_name"]) == (None, "Anna")
    r = await app_client.patch(f"/admin/users/{user_id}", headers=h, json={"display_name": " Анна "})
    assert r.status_code == 200 and (r.json()["display_name"], r.json()["shown_name"]) == ("Анна", "Анна")
    r = await app_client.patch(f"/admin/users/{user_id}", headers=h, json={"capacity": 3})
    assert r.json()["display_name"] == "Анна"  # left out: kept
    r = await app_client.patch(f"/admin/users/{user_id}", headers=h, json={"display_name": ""})
    assert (r.json()["display_name"], r.json()["shown_name"]) == (None, "Anna")  # cleared
    assert await _audit(app_client, h, user_id) == [{"display_name": ""}, {"capacity": "3"},
                                                    {"display_name": "Анна"}]
    # It goes into e-mail headers: a line break is refused with the reason, as is a name too long.
    for bad in ("Anna\r\nBcc: x@evil.example", "A" * 101):
        r = await app_client.patch(f"/admin/users/{user_id}", headers=h, json={"display_name": bad})
        assert r.status_code == 422 and "display_name" in r.text, r.text
    r = await app_client.post("/admin/users", headers=h, json={
        "email": "boris@test.example", "name": "Boris", "password": "password-123", "display_name": "B\nx"})
    assert r.status_code == 422 and "one line" in r.text
