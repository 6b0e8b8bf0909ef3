"""Agents' ticket work through the API: list, filter, take, assign, transfer, note, merge; customers; orders."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.users.models import Role
from tests.conftest import REST_HEADERS, make_user, rest_message

Auth = tuple[Any, dict[str, str]]


async def submit(client: httpx.AsyncClient, ext: str, text: str, sender: str = "c-1", **kw: Any) -> dict[str, Any]:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message(ext, text, sender, **kw))
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def test_list_filters_and_pagination(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    tv = await submit(app_client, "1", "my TV is broken", sender="a")
    net = await submit(app_client, "2", "internet is down", sender="b")
    hello = await submit(app_client, "3", "hello", sender="c")
    r = await app_client.get("/tickets", headers=h)
    assert r.json()["total"] == 3
    # Sorted by waiting time: the oldest customer message first.
    assert [t["number"] for t in r.json()["items"]] == [tv["ticket_number"], net["ticket_number"],
                                                      hello["ticket_number"]]
    r = await app_client.get("/tickets", headers=h, params={"status": "bot"})
    assert [t["number"] for t in r.json()["items"]] == [hello["ticket_number"]]
    r = await app_client.get("/tickets", headers=h, params={"queue": "technical"})
    assert [t["number"] for t in r.json()["items"]] == [net["ticket_number"]]
    assert r.json()["items"][0]["intent"] == "internet_down"
    r = await app_client.get("/tickets", headers=h, params={"status": ["open", "bot"], "limit": 1, "offset": 1})
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 1
    r = await app_client.get("/tickets", headers=h, params={"q": net["ticket_number"]})
    assert [t["number"] for t in r.json()["items"]] == [net["ticket_number"]]
    r = await app_client.get("/tickets", headers=h, params={"q": "TV is"})
    assert [t["number"] for t in r.json()["items"]] == [tv["ticket_number"]]
    r = await app_client.get("/tickets", headers=h, params={"assignee": "none", "channel": "rest"})
    assert r.json()["total"] == 3
    assert (await app_client.get("/tickets", headers=h, params={"assignee": "x"})).status_code == 422
    assert (await app_client.get("/tickets", headers=h, params={"limit": 1000})).status_code == 422


async def test_take_assign_transfer_and_conflicts(app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth,
                                                  sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent_user, h = agent
    other, other_token = await make_user(sessionmaker, Role.agent, "other@test.example")
    oh = {"Authorization": f"Bearer {other_token}"}
    n = (await submit(app_client, "1", "my TV is broken"))["ticket_number"]
    r = await app_client.post(f"/tickets/{n}/take", headers=h)
    assert r.json()["assignee"]["id"] == agent_user.id and r.json()["status"] == "open"
    r = await app_client.post(f"/tickets/{n}/take", headers=oh)
    assert r.status_code == 409 and "already taken" in r.json()["message"]
    r = await app_client.post(f"/tickets/{n}/assign", headers=oh, json={"user_id": other.id})
    assert r.status_code == 409
    r = await app_client.post(f"/tickets/{n}/assign", headers=h, json={"user_id": other.id})
    assert r.status_code == 403 and "themselves" in r.json()["message"]
    r = await app_client.post(f"/tickets/{n}/assign", headers=supervisor[1], json={"user_id": other.id})
    assert r.status_code == 200 and r.json()["assignee"]["id"] == other.id
    r = await app_client.patch(f"/tickets/{n}", headers=oh, json={"queue": "billing", "priority": "urgent"})
    assert r.json()["team"]["slug"] == "billing" and r.json()["assignee"] is None
    assert r.json()["priority"] == "urgent"
    r = await app_client.get("/tickets", headers=oh, params={"assignee": "me"})
    assert r.json()["total"] == 0


async def test_reply_note_status_and_audit(app_client: httpx.AsyncClient, agent: Auth, admin: Auth) -> None:
    _, h = agent
    n = (await submit(app_client, "1", "my TV is broken"))["ticket_number"]
    r = await app_client.post(f"/tickets/{n}/notes", headers=h, json={"text": "customer is a VIP"})
    assert r.status_code == 201
    r = await app_client.post(f"/tickets/{n}/reply", headers=h, json={"text": "Fixed?", "status": "pending"})
    assert r.status_code == 201
    detail = (await app_client.get(f"/tickets/{n}", headers=h)).json()
    assert detail["status"] == "pending" and detail["assignee"] is not None
    assert [note["text"] for note in detail["notes"]] == ["customer is a VIP"]
    assert [m["author_kind"] for m in detail["messages"]] == ["customer", "bot", "agent"]
    assert detail["allowed_statuses"] == ["closed", "open", "resolved"]
    # The customer answers: the ticket goes back to open, the bot stays quiet.
    res = await submit(app_client, "2", "hello, still broken")
    assert res["ticket_number"] == n and res["action"] == "agent" and res["reply_message_ids"] == []
    assert (await app_client.get(f"/tickets/{n}", headers=h)).json()["status"] == "open"
    actions = [e["action"] for e in (await app_client.get("/admin/audit", headers=admin[1],
                                                            params={"entity_type": "ticket"})).json()]
    assert {"ticket.note", "ticket.reply", "ticket.take"} <= set(actions)


async def test_merge_tickets_of_one_customer(app_client: httpx.AsyncClient, agent: Auth) -> None:
    _, h = agent
    a = await submit(app_client, "1", "tv broken", sender="x", thread_id="t1")
    b = await submit(app_client, "2", "tv still broken", sender="x", thread_id="t2")
    other = await submit(app_client, "3", "tv", sender="y")
    assert a["ticket_id"] != b["ticket_id"]
    r = await app_client.post(f"/tickets/{other['ticket_number']}/merge", headers=h,
                              json={"source_ticket_id": a["ticket_id"]})
    assert r.status_code == 409 and "same customer" in r.json()["message"]
    r = await app_client.post(f"/tickets/{a['ticket_number']}/merge", headers=h,
                              json={"source_ticket_id": b["ticket_id"]})
    assert r.status_code == 200
    merged = (await app_client.get(f"/tickets/{a['ticket_number']}", headers=h)).json()
    assert sum(m["author_kind"] == "customer" for m in merged["messages"]) == 2
    src = (await app_client.get(f"/tickets/{b['ticket_number']}", headers=h)).json()
    assert src["status"] == "closed" and src["merged_into_id"] == a["ticket_id"]
    # New messages on the merged thread land on the surviving ticket.
    again = await submit(app_client, "4", "any news?", sender="x", thread_id="t2")
    assert again["ticket_id"] != b["ticket_id"]


async def test_customers_history_merge_export_erase(app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth,
                                                    admin: Auth) -> None:
    a = await submit(app_client, "1", "tv broken", sender="web-1")
    b = await submit(app_client, "2", "hello", sender="web-2")
    ca = (await app_client.get(f"/tickets/{a['ticket_number']}", headers=agent[1])).json()["customer"]["id"]
    cb = (await app_client.get(f"/tickets/{b['ticket_number']}", headers=agent[1])).json()["customer"]["id"]
    r = await app_client.post(f"/customers/{ca}/merge", headers=agent[1], json={"source_customer_id": cb})
    assert r.status_code == 403
    r = await app_client.post(f"/customers/{ca}/merge", headers=supervisor[1], json={"source_customer_id": cb})
    assert r.status_code == 200
    assert {i["external_id"] for i in r.json()["identities"]} == {"web-1", "web-2"}
    history = (await app_client.get(f"/customers/{ca}/history", headers=agent[1])).json()
    assert [m["text"] for m in history if m["author_kind"] == "customer"] == ["tv broken", "hello"]
    audit = (await app_client.get("/admin/audit", headers=admin[1],
                                  params={"entity_type": "customer", "entity_id": str(ca)})).json()
    assert [(e["actor_user_id"], e["data"]["where"]) for e in audit if e["action"] == "customer.view"] == [
        (agent[0].id, "api:history")]
    # The merged-away customer's identity now leads to the surviving customer.
    c = await submit(app_client, "3", "hello again", sender="web-2")
    detail = (await app_client.get(f"/tickets/{c['ticket_number']}", headers=agent[1])).json()
    assert detail["customer"]["id"] == ca
    export = (await app_client.get(f"/customers/{ca}/export", headers=admin[1])).json()
    assert len(export["tickets"]) >= 2 and export["messages"]
    r = await app_client.post(f"/customers/{ca}/erase", headers=admin[1])
    assert r.json()["erased_at"] is not None and r.json()["name"] is None
    history = (await app_client.get(f"/customers/{ca}/history", headers=agent[1])).json()
    assert all(m["text"] == "" for m in history)


async def test_orders_upsert_history_and_bot_answer(app_client: httpx.AsyncClient, supervisor: Auth,
                                                    agent: Auth) -> None:
    h = supervisor[1]
    r = await app_client.put("/orders/ORD-123456", headers=h, json={"status": "accepted", "description": "Router"})
    assert r.status_code == 201
    r = await app_client.put("/orders/ORD-123456", headers=h, json={"status": "accepted"})
    assert r.status_code == 200 and len(r.json()["history"]) == 1
    r = await app_client.post("/orders/ORD-123456/status", headers=h, json={"status": "shipped", "note": "DHL"})
    assert [s["status"] for s in r.json()["history"]] == ["accepted", "shipped"]
    assert (await app_client.post("/orders/NOPE/status", headers=h, json={"status": "x"})).status_code == 404
    r = await app_client.put("/orders/bad number!", headers=h, json={"status": "x"})
    assert r.status_code in (404, 422)
    r = await app_client.put("/orders/ORD-9", headers=h, json={"status": "x", "customer": {"id": 4242}})
    assert r.status_code == 404
    r = await app_client.get("/orders/ORD-123456", headers=agent[1])
    assert r.json()["status"] == "shipped"


async def test_health_and_metrics(app_client: httpx.AsyncClient) -> None:
    await submit(app_client, "1", "hello")
    r = await app_client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["database"]["state"] == "ok"
    assert body["workers"]["outbox"]["state"] == "running"
    assert body["channels"]["rest"]["state"] == "connected"
    r = await app_client.get("/metrics")
    assert 'switchboard_http_requests_total{method="POST",route="/channels/rest/messages",status="201"}' in r.text
    before = metric_values(r.text)
    await submit(app_client, "2", "hello again")
    await submit(app_client, "2", "hello again")  # a redelivery
    state = app_client.app.state.switchboard  # type: ignore[attr-defined]
    await state.ingest.quarantine("email", "unparseable email", b"\xff garbage")
    after = metric_values((await app_client.get("/metrics")).text)

    def grew(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    # Counted in the ingest service every channel goes through, not per router.
    assert grew('switchboard_messages_ingested_total{action="duplicate",channel="rest"}') == 1
    assert sum(grew(k) for k in after if k.startswith("switchboard_messages_ingested_total")) == 2
    assert grew('switchboard_quarantined_total{channel="email"}') == 1
    assert grew("switchboard_ingest_batches_total") >= 1
    assert 'switchboard_outbox_events_total{event="sent"}' in after


def metric_values(text: str) -> dict[str, float]:
    """Prometheus text format -> {"name{labels}": value}."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


async def test_customer_search_and_orders(app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth) -> None:
    r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS, json={
        "external_message_id": "1", "sender": {"external_id": "s-1", "name": "Ирина Котова", "email": "ira@x.ru"},
        "text": "hello"})
    assert r.status_code == 201
    found = (await app_client.get("/customers", headers=agent[1], params={"q": "котова"})).json()
    assert [c["name"] for c in found] == ["Ирина Котова"]
    assert found[0]["identities"][0]["external_id"] == "s-1"
    assert (await app_client.get("/customers", headers=agent[1], params={"q": "nobody"})).json() == []
    tickets = (await app_client.get("/tickets", headers=agent[1], params={"q": "КОТОВА"})).json()
    assert tickets["total"] == 1
    for number, status in (("ORD-1", "accepted"), ("ORD-2", "shipped")):
        r = await app_client.put(f"/orders/{number}", headers=supervisor[1],
                                 json={"status": status, "customer": {"email": "ira@x.ru"}})
        assert r.status_code == 201
    await app_client.post("/orders/ORD-1/status", headers=supervisor[1], json={"status": "delivered"})
    orders = (await app_client.get(f"/customers/{found[0]['id']}/orders", headers=agent[1])).json()
    assert [(o["number"], [h["status"] for h in o["history"]]) for o in orders] == [
        ("ORD-2", ["shipped"]), ("ORD-1", ["accepted", "delivered"])]


async def test_take_over_and_expected_assignee_guard(app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth,
                                                     sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Issue 11, scope 7: taking a held ticket needs take_over; an expected holder that changed is a 409."""
    agent_user, h = agent
    other, other_token = await make_user(sessionmaker, Role.agent, "other@test.example")
    oh = {"Authorization": f"Bearer {other_token}"}
    n = (await submit(app_client, "1", "my TV is broken"))["ticket_number"]
    assert (await app_client.post(f"/tickets/{n}/take", headers=h)).status_code == 200
    r = await app_client.post(f"/tickets/{n}/take", headers=supervisor[1])  # no silent take-over, by anyone
    assert r.status_code == 409 and r.json()["error"] == "ticket_held"
    assert r.json()["details"] == {"assignee_id": agent_user.id, "assignee_name": agent_user.name}
    r = await app_client.post(f"/tickets/{n}/take", headers=oh,
                              params={"take_over": "true", "expected_assignee_id": str(other.id)})
    assert r.status_code == 409 and r.json()["error"] == "ticket_held"
    r = await app_client.post(f"/tickets/{n}/take", headers=oh,
                              params={"take_over": "true", "expected_assignee_id": str(agent_user.id)})
    assert r.status_code == 200 and r.json()["assignee"]["id"] == other.id
    # A non-assignee's reply through the API goes out as before (the console is the one that asks first).
    r = await app_client.post(f"/tickets/{n}/reply", headers=h, json={"text": "Reboot the box"})
    assert r.status_code == 201
    # Assignment with the holder the client saw: a stale one is refused, a current one goes through.
    r = await app_client.post(f"/tickets/{n}/assign", headers=supervisor[1],
                              json={"user_id": agent_user.id, "expected_assignee_id": None})
    assert r.status_code == 409 and r.json()["error"] == "ticket_held"
    r = await app_client.post(f"/tickets/{n}/assign", headers=supervisor[1],
                              json={"user_id": agent_user.id, "expected_assignee_id": other.id})
    assert r.status_code == 200 and r.json()["assignee"]["id"] == agent_user.id
