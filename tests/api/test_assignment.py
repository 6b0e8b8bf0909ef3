"""Automatic assignment through the API: queue settings with warnings, agents' presence and languages, bad input,
and an escalation handed to the one online agent by the running job (with its history)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message
from tests.support.waiting import wait_for

Person = tuple[User, dict[str, str]]


async def test_an_admin_switches_a_queue_to_automatic_and_is_warned_when_nobody_can_serve_it(
        app_client: httpx.AsyncClient, admin: Person, agent: Person) -> None:
    r = await app_client.patch("/admin/queues/sales", headers=admin[1],
                               json={"assignment_mode": "round_robin", "return_after_minutes": 20})
    assert r.status_code == 200, r.text
    assert r.json() | {"id": 0} == {"id": 0, "slug": "sales", "name": r.json()["name"],
                                    "assignment_mode": "round_robin", "return_after_minutes": 20,
                                    "calendar_id": None, "bot_answers_while_waiting": False,
                                    "default_wait_minutes": 15, "csat_enabled": False, "csat_delay_minutes": 60,
                                    "warnings": ["no_agents"]}
    # The agent fixture is in `technical` and has not sent a heartbeat... but any request marks them seen.
    r = await app_client.patch("/admin/queues/technical", headers=admin[1], json={"assignment_mode": "least_loaded"})
    assert r.json()["warnings"] == ["none_online"]
    assert (await app_client.post("/me/heartbeat", headers=agent[1])).json()["presence"] == "online"
    r = await app_client.patch("/admin/queues/technical", headers=admin[1], json={})
    assert r.status_code == 200 and r.json()["warnings"] == []
    queues = {q["slug"]: q for q in (await app_client.get("/admin/queues", headers=admin[1])).json()}
    assert queues["sales"]["assignment_mode"] == "round_robin" and queues["billing"]["assignment_mode"] == "manual"
    assert queues["technical"]["return_after_minutes"] == 15  # the default


@pytest.mark.parametrize("body", [
    {"assignment_mode": "random"}, {"assignment_mode": ""}, {"return_after_minutes": 0},
    {"return_after_minutes": -5}, {"return_after_minutes": "15"}, {"return_after_minutes": 10081},
    {"name": "   "}, {"capacity": 3},
])
async def test_bad_queue_settings_are_422(app_client: httpx.AsyncClient, admin: Person, body: dict[str, Any]
                                          ) -> None:
    r = await app_client.patch("/admin/queues/sales", headers=admin[1], json=body)
    assert r.status_code == 422, r.text


async def test_only_admins_change_queues_and_unknown_queues_are_404(
        app_client: httpx.AsyncClient, admin: Person, agent: Person) -> None:
    r = await app_client.patch("/admin/queues/sales", headers=agent[1], json={"assignment_mode": "round_robin"})
    assert r.status_code == 403
    r = await app_client.patch("/admin/queues/nope", headers=admin[1], json={"assignment_mode": "round_robin"})
    assert r.status_code == 404


async def test_an_agent_sets_themselves_away_and_their_languages(app_client: httpx.AsyncClient, agent: Person
                                                                 ) -> None:
    user, headers = agent
    r = await app_client.put("/me/presence", headers=headers, json={"away": True, "languages": ["ru", "en", "ru"]})
    assert r.status_code == 200, r.text
    assert r.json() | {"last_seen_at": None} == {"user_id": user.id, "presence": "away", "away": True,
                                                 "languages": ["ru", "en"], "last_seen_at": None}
    r = await app_client.put("/me/presence", headers=headers, json={"away": False})
    assert r.json()["presence"] == "online" and r.json()["languages"] == ["ru", "en"]
    for bad in ({"languages": ["EN"]}, {"languages": ["english"]}, {"languages": "ru"}, {"away": "maybe"},
                {"status": "online"}, {"languages": ["ru"] * 21}):
        r = await app_client.put("/me/presence", headers=headers, json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert (await app_client.get("/me/presence")).status_code == 401


async def test_admins_set_agents_languages(app_client: httpx.AsyncClient, admin: Person, agent: Person) -> None:
    user_id = agent[0].id
    r = await app_client.patch(f"/admin/users/{user_id}", headers=admin[1], json={"languages": ["ru", "en"]})
    assert r.status_code == 200 and r.json()["languages"] == ["ru", "en"]
    r = await app_client.patch(f"/admin/users/{user_id}", headers=admin[1], json={"languages": ["r1"]})
    assert r.status_code == 422
    r = await app_client.post("/admin/users", headers=admin[1], json={
        "email": "new@test.example", "name": "New", "password": "password-123", "languages": ["kk", "ru"]})
    assert r.status_code == 201 and r.json()["languages"] == ["kk", "ru"] and r.json()["away"] is False


async def test_an_escalation_goes_to_the_online_agent_and_the_history_says_so(
        app_client: httpx.AsyncClient, admin: Person, agent: Person) -> None:
    user, headers = agent
    await app_client.patch("/admin/queues/technical", headers=admin[1], json={"assignment_mode": "round_robin"})
    await app_client.post("/me/heartbeat", headers=headers)
    r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("m-1", "my internet is down", sender="c-1"))
    assert r.status_code == 201, r.text
    number = r.json()["ticket_number"]

    async def assigned() -> Any:
        ticket = (await app_client.get(f"/tickets/{number}", headers=headers)).json()
        return ticket if (ticket["assignee"] or {}).get("id") == user.id else None

    ticket = await wait_for(assigned, "the ticket assigned by the job")
    assert ticket["status"] == "open"
    r = await app_client.get("/admin/audit", headers=admin[1],
                             params={"entity_type": "ticket", "entity_id": str(ticket["id"])})
    [entry] = [e for e in r.json() if e["action"] == "ticket.auto_assign"]
    assert entry["actor_user_id"] is None and entry["data"]["new"] == user.id
