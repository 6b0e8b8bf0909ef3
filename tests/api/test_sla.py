"""SLA through the API: policies (admin), the ticket JSON's `sla`, sort by due time, timers on two instances."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from core.audit.models import AuditEntry
from core.clock import ManualClock
from tests.conftest import REST_HEADERS, keyword_engine, make_settings, responses, rest_message
from tests.support.waiting import wait_for

Auth = tuple[Any, dict[str, str]]


async def submit(client: httpx.AsyncClient, ext: str, text: str, sender: str) -> dict[str, Any]:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message(ext, text, sender))
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def always_open(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    r = await client.get("/admin/calendars", headers=headers)
    return int(next(c["id"] for c in r.json() if c["name"] == "24/7"))


async def test_policies_are_validated_with_reasons_and_listed_in_match_order(
        app_client: httpx.AsyncClient, admin: Auth, supervisor: Auth) -> None:
    _, h = admin
    cal = await always_open(app_client, h)
    base = {"name": "billing", "calendar_id": cal, "first_response_minutes": 30, "resolution_minutes": 480}
    for bad, reason in [
        ({"first_response_minutes": -1}, "first_response_minutes must be a positive"),
        ({"next_response_minutes": 0}, "next_response_minutes must be a positive"),
        ({"warning_share": 1.2}, "warning_share must be strictly between 0 and 1"),
        ({"calendar_id": 424242}, "calendar 424242 does not exist"),
        ({"queues": ["nowhere"]}, "unknown queue(s) in queues: nowhere"),
        ({"on_warning": {"move_to_queue": "nowhere"}}, "unknown queue(s) in on_warning.move_to_queue"),
    ]:
        r = await app_client.post("/admin/sla-policies", headers=h, json={**base, **bad})
        assert r.status_code == 422, (bad, r.text)
        assert reason in r.json()["message"]
    r = await app_client.post("/admin/sla-policies", headers=h, json={**base, "priorities": ["loud"]})
    assert r.status_code == 422
    r = await app_client.post("/admin/sla-policies", headers=h, json={
        **base, "position": 5, "queues": ["billing"], "priorities": ["high", "urgent"],
        "on_breach": {"raise_priority": True, "move_to_queue": "retention", "unassign": True}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["queues"] == ["billing"] and created["warning_share"] == 0.8
    assert created["on_breach"] == {"raise_priority": True, "move_to_queue": "retention", "unassign": True}
    assert (await app_client.post("/admin/sla-policies", headers=h, json=base)).status_code == 409
    r = await app_client.post("/admin/sla-policies", headers=h, json={**base, "name": "catch-all", "position": 1})
    assert r.status_code == 201
    _, sh = supervisor
    listed = (await app_client.get("/admin/sla-policies", headers=sh)).json()
    assert [p["name"] for p in listed] == ["catch-all", "billing"]
    assert (await app_client.post("/admin/sla-policies", headers=sh, json={**base, "name": "x"})).status_code == 403
    r = await app_client.patch(f"/admin/sla-policies/{created['id']}", headers=h, json={"warning_share": 0})
    assert r.status_code == 422
    r = await app_client.patch(f"/admin/sla-policies/{created['id']}", headers=h, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    # The calendar is in use: 409 naming the policies.
    r = await app_client.delete(f"/admin/calendars/{cal}", headers=h)
    assert r.status_code == 409 and r.json()["details"]["used_by"] == ["SLA policy billing", "SLA policy catch-all"]
    assert (await app_client.delete(f"/admin/sla-policies/{created['id']}", headers=h)).status_code == 204
    assert (await app_client.get(f"/admin/sla-policies/{created['id']}", headers=h)).status_code == 404


async def test_the_ticket_json_carries_its_sla_and_the_list_sorts_by_due_time(
        app_client: httpx.AsyncClient, admin: Auth, agent: Auth) -> None:
    _, h = admin
    cal = await always_open(app_client, h)
    for body in ({"name": "technical fast", "position": 1, "queues": ["technical"], "first_response_minutes": 15},
                 {"name": "standard", "position": 2, "first_response_minutes": 60, "next_response_minutes": 30,
                  "resolution_minutes": 600}):
        assert (await app_client.post("/admin/sla-policies", headers=h,
                                      json={"calendar_id": cal, **body})).status_code == 201
    _, ah = agent
    slow = await submit(app_client, "s1", "my TV is broken, please call an operator", "a")
    fast = await submit(app_client, "s2", "internet is down", "b")
    bot = await submit(app_client, "s3", "hello", "c")
    ticket = (await app_client.get(f"/tickets/{fast['ticket_number']}", headers=ah)).json()
    assert ticket["status"] == "open" and ticket["sla"]["policy"] == "technical fast"
    assert ticket["sla"]["state"] == "ok" and 14 * 60 <= ticket["sla"]["remaining_seconds"] <= 15 * 60
    assert ticket["sla"]["first_response_due_at"] and ticket["sla"]["resolution_due_at"] is None
    assert (await app_client.get(f"/tickets/{bot['ticket_number']}", headers=ah)).json()["sla"] is None
    r = await app_client.get("/tickets", headers=ah, params={"sort": "due"})
    numbers = [t["number"] for t in r.json()["items"]]
    assert numbers[:2] == [fast["ticket_number"], slow["ticket_number"]] and numbers[-1] == bot["ticket_number"]
    assert r.json()["items"][1]["sla"]["policy"] == "standard"
    assert (await app_client.get("/tickets", headers=ah, params={"sort": "soon"})).status_code == 422
    # The first reply meets the first response; waiting for the customer pauses; resolving meets the rest.
    r = await app_client.post(f"/tickets/{slow['ticket_number']}/reply", headers=ah, json={"text": "On it"})
    assert r.status_code == 201
    sla = (await app_client.get(f"/tickets/{slow['ticket_number']}", headers=ah)).json()["sla"]
    assert sla["first_response_met_at"] is not None and sla["state"] == "ok"
    assert sla["due_at"] == sla["resolution_due_at"]
    r = await app_client.patch(f"/tickets/{slow['ticket_number']}", headers=ah, json={"status": "pending"})
    assert r.status_code == 200 and r.json()["sla"]["state"] == "paused" and r.json()["sla"]["due_at"] is None
    await submit(app_client, "s4", "still broken", "a")  # the customer answers: the clock runs again
    sla = (await app_client.get(f"/tickets/{slow['ticket_number']}", headers=ah)).json()["sla"]
    assert sla["state"] == "ok" and sla["next_response_due_at"] is not None
    r = await app_client.patch(f"/tickets/{slow['ticket_number']}", headers=ah, json={"status": "resolved"})
    assert r.json()["sla"]["state"] == "met"


@pytest.mark.postgres
async def test_two_instances_sharing_a_database_fire_each_alert_once(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], admin: Auth) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("two instances share a PostgreSQL database")
    clock = ManualClock()
    settings = make_settings(db_url, due_tasks_poll_seconds=0.2)
    apps = [create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False,
                       jobs_clock=clock) for _ in range(2)]
    _, h = admin
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        one = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://one")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url="http://two")
        cal = await always_open(one, h)
        r = await one.post("/admin/sla-policies", headers=h, json={
            "name": "fast", "calendar_id": cal, "first_response_minutes": 10, "resolution_minutes": 20})
        assert r.status_code == 201
        tickets = 12
        start = clock.now()
        for i in range(tickets):
            await submit(one if i % 2 else two, f"two-{i}", "internet is down", f"cust-{i}")
        async def alerts_at_least(expected: int) -> bool:
            async with sessionmaker() as session:
                return len((await session.scalars(select(AuditEntry.id).where(
                    AuditEntry.action.like("sla.%")))).all()) >= expected

        # The first response warns at 8 min and is breached at 10, the resolution at 16 and 20: one step each.
        for step, minutes in enumerate((8.5, 10.5, 16.5, 20.5), start=1):
            clock.advance(minutes * 60 - (clock.now() - start).total_seconds())
            await wait_for(functools.partial(alerts_at_least, step * tickets), f"alert round {step} fired")
        runners = [app.state.switchboard.due_tasks for app in apps]
        async with sessionmaker() as session:
            rows = (await session.execute(select(AuditEntry.entity_id, AuditEntry.action, AuditEntry.data)
                                          .where(AuditEntry.action.like("sla.%")))).all()
        counts = Counter((entity, action, data["target"]) for entity, action, data in rows)
        assert len(counts) == 4 * tickets and set(counts.values()) == {1}
        # Every firing counted once between the two (which instance claims a round is up to the database: either
        # may take them all, so the split itself is not asserted).
        assert sum(r.stats.fired for r in runners) == 4 * tickets, [r.stats.fired for r in runners]
        await one.aclose()
        await two.aclose()


async def test_a_customer_message_that_raises_the_priority_re_matches_the_policy(
        app_client: httpx.AsyncClient, admin: Auth, agent: Auth) -> None:
    _, h = admin
    cal = await always_open(app_client, h)
    for body in ({"name": "high", "position": 1, "priorities": ["high", "urgent"], "first_response_minutes": 5},
                 {"name": "standard", "position": 2, "first_response_minutes": 60}):
        assert (await app_client.post("/admin/sla-policies", headers=h,
                                      json={"calendar_id": cal, **body})).status_code == 201
    _, ah = agent
    first = await submit(app_client, "p1", "internet is down", "d")
    ticket = (await app_client.get(f"/tickets/{first['ticket_number']}", headers=ah)).json()
    assert ticket["priority"] == "normal" and ticket["sla"]["policy"] == "standard"
    await submit(app_client, "p2", "this is a complaint, nobody answers", "d")
    ticket = (await app_client.get(f"/tickets/{first['ticket_number']}", headers=ah)).json()
    assert ticket["priority"] == "high" and ticket["sla"]["policy"] == "high"
    assert ticket["sla"]["remaining_seconds"] <= 5 * 60
