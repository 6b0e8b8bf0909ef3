"""Through the REST API: declared intent actions, queues' hand-over settings, a calendar a queue uses."""

from __future__ import annotations

import httpx

from core.users.models import User


async def test_admin_lists_and_declares_intent_actions(app_client: httpx.AsyncClient,
                                                       admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    # (the test app starts without the shipped data): one trained FAQ with an answer, one without yet
    for name in ("office_hours", "sim_block"):
        assert (await app_client.post("/admin/nlu/intents", headers=h, json={"name": name})).status_code == 201
    r = await app_client.put("/admin/nlu/intents/office_hours/responses", headers=h, json={"en": "9 to 18"})
    assert r.status_code == 200
    r = await app_client.get("/admin/nlu/actions", headers=h)
    assert r.status_code == 200, r.text
    by_intent = {a["intent"]: a for a in r.json()}
    assert by_intent["contract_terminate"] == {"intent": "contract_terminate", "action": "answer_and_escalate",
                                               "declared": False}
    assert by_intent["order_status"]["action"] == "self_service"
    assert by_intent["office_hours"] == {"intent": "office_hours", "action": "answer", "declared": False}
    assert by_intent["sim_block"] == {"intent": "sim_block", "action": "escalate", "declared": False}

    r = await app_client.put("/admin/nlu/intents/contract_info/action", headers=h, json={"action": "escalate"})
    assert r.status_code == 200, r.text
    assert r.json() == {"intent": "contract_info", "action": "escalate", "declared": True}
    listed = {a["intent"]: a for a in (await app_client.get("/admin/nlu/actions", headers=h)).json()}
    assert listed["contract_info"] == {"intent": "contract_info", "action": "escalate", "declared": True}


async def test_bad_intent_actions_are_422_with_a_reason(app_client: httpx.AsyncClient,
                                                        admin: tuple[User, dict[str, str]],
                                                        agent: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    r = await app_client.put("/admin/nlu/intents/roaming/action", headers=h, json={"action": "reply"})
    assert r.status_code == 422 and "answer_and_escalate" in r.text
    assert (await app_client.post("/admin/nlu/intents", headers=h, json={"name": "sim_block"})).status_code == 201
    r = await app_client.put("/admin/nlu/intents/sim_block/action", headers=h, json={"action": "answer"})
    assert r.status_code == 422 and "no answer text" in r.json()["message"]
    r = await app_client.put("/admin/nlu/intents/sim_block/action", headers=h, json={"action": "self_service"})
    assert r.status_code == 422 and "self-service" in r.json()["message"]
    for refused in ("answer", "self_service"):
        r = await app_client.put("/admin/nlu/intents/human_handoff/action", headers=h, json={"action": refused})
        assert r.status_code == 422 and "asking for a person" in r.json()["message"], refused
    r = await app_client.put("/admin/nlu/intents/human_handoff/action", headers=h, json={"action": "escalate"})
    assert r.status_code == 200
    r = await app_client.put("/admin/nlu/intents/contract_info/action", headers=agent[1], json={"action": "answer"})
    assert r.status_code == 403


async def test_queue_handover_settings_and_the_calendar_in_use(app_client: httpx.AsyncClient,
                                                               admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    calendars = {c["name"]: c["id"] for c in (await app_client.get("/admin/calendars", headers=h)).json()}
    office = calendars["Russia, office hours (Moscow)"]
    r = await app_client.patch("/admin/queues/billing", headers=h, json={
        "calendar_id": office, "bot_answers_while_waiting": True, "default_wait_minutes": 30})
    assert r.status_code == 200, r.text
    assert r.json() | {"id": 0} == {"id": 0, "slug": "billing", "name": r.json()["name"], "calendar_id": office,
                                    "bot_answers_while_waiting": True, "default_wait_minutes": 30,
                                    "assignment_mode": "manual", "return_after_minutes": 15, "warnings": [],
                                    "csat_enabled": False, "csat_delay_minutes": 60}
    queues = {q["slug"]: q for q in (await app_client.get("/admin/queues", headers=h)).json()}
    assert queues["billing"]["calendar_id"] == office and queues["general"]["calendar_id"] is None

    r = await app_client.delete(f"/admin/calendars/{office}", headers=h)
    assert r.status_code == 409 and "queue billing" in r.json()["message"]
    r = await app_client.patch("/admin/queues/billing", headers=h, json={"calendar_id": None})
    assert r.status_code == 200 and r.json()["calendar_id"] is None and r.json()["default_wait_minutes"] == 30
    assert (await app_client.delete(f"/admin/calendars/{office}", headers=h)).status_code == 204

    # Surveys: one field given, the other kept; a delay out of range is refused.
    r = await app_client.patch("/admin/queues/billing", headers=h, json={"csat_enabled": True})
    assert r.status_code == 200 and (r.json()["csat_enabled"], r.json()["csat_delay_minutes"]) == (True, 60)
    r = await app_client.patch("/admin/queues/billing", headers=h, json={"csat_delay_minutes": 5})
    assert r.status_code == 200 and (r.json()["csat_enabled"], r.json()["csat_delay_minutes"]) == (True, 5)

    for bad in ({"calendar_id": 999999}, {"default_wait_minutes": 0}, {"colour": "red"},
                {"csat_delay_minutes": -1}, {"csat_enabled": "maybe"}):
        r = await app_client.patch("/admin/queues/billing", headers=h, json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert (await app_client.patch("/admin/queues/nope", headers=h, json={})).status_code == 404
