"""Console: the bot action per intent (Admin → Intents) and the queues' settings (Admin → Queues: one form per
queue, saved through the same update as PATCH /admin/queues)."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.calendars.models import Calendar
from core.users.models import Team
from tests.console.conftest import People, login, post_form, save_queue
from tests.console.test_intents import INTENTS, flash_after


async def test_admin_sets_an_intents_action_with_reasons_for_bad_input(
        client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.admin.email)
    for name in ("contract_terminate", "order_status"):  # (the test app starts without the shipped data)
        assert (await post_form(client, INTENTS, INTENTS, {"name": name})).status_code == 303
    page = await client.get(f"{INTENTS}/contract_terminate")
    assert page.status_code == 200
    assert '<option value="answer_and_escalate" selected>' in page.text and "(default)" in page.text
    listing = await client.get(INTENTS)
    assert 'data-action="answer_and_escalate"' in listing.text and 'data-action="self_service"' in listing.text

    r = await post_form(client, f"{INTENTS}/contract_terminate", f"{INTENTS}/contract_terminate/action",
                        {"action": "escalate"})
    assert await flash_after(client, r) == ("info", "Saved.")
    page = await client.get(f"{INTENTS}/contract_terminate")
    assert '<option value="escalate" selected>' in page.text and "(default)" not in page.text

    r = await post_form(client, f"{INTENTS}/contract_terminate", f"{INTENTS}/contract_terminate/action",
                        {"action": "shout"})
    kind, text = await flash_after(client, r)
    assert kind == "error" and "unknown action 'shout'" in text

    r = await post_form(client, INTENTS, INTENTS, {"name": "sim_block"})
    assert r.status_code == 303
    page = await client.get(f"{INTENTS}/sim_block")  # no answer text: escalates, and says why it cannot answer
    assert '<option value="escalate" selected>' in page.text
    r = await post_form(client, f"{INTENTS}/sim_block", f"{INTENTS}/sim_block/action", {"action": "answer"})
    kind, text = await flash_after(client, r)
    assert kind == "error" and "no answer text" in text


async def test_admin_sets_a_queues_calendar_wait_and_self_service(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    async with sessionmaker() as s:
        office = (await s.scalars(select(Calendar).where(Calendar.name == "Russia, office hours (Moscow)"))).one()
    page = await client.get("/console/admin/queues")
    assert page.status_code == 200 and "Russia, office hours (Moscow)" in page.text
    r = await save_queue(client, "billing", calendar_id=str(office.id), default_wait_minutes="25",
                         bot_answers_while_waiting="on")
    assert await flash_after(client, r) == ("info", "Saved.")
    async with sessionmaker() as s:
        billing = (await s.scalars(select(Team).where(Team.slug == "billing"))).one()
    assert (billing.calendar_id, billing.default_wait_minutes, billing.bot_answers_while_waiting) == (
        office.id, 25, True)

    r = await save_queue(client, "billing", calendar_id="", default_wait_minutes="0")
    kind, text = await flash_after(client, r)
    assert kind == "error" and "default_wait_minutes" in text
    r = await save_queue(client, "billing", calendar_id="", default_wait_minutes="20",
                         bot_answers_while_waiting=None)
    assert await flash_after(client, r) == ("info", "Saved.")
    async with sessionmaker() as s:
        billing = (await s.scalars(select(Team).where(Team.slug == "billing"))).one()
    assert (billing.calendar_id, billing.default_wait_minutes, billing.bot_answers_while_waiting) == (
        None, 20, False)



async def test_one_form_per_queue_saves_all_its_settings_through_the_apis_update(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    page = (await client.get("/console/admin/queues")).text
    async with sessionmaker() as s:
        slugs = [t.slug for t in (await s.scalars(select(Team))).all()]
        office = (await s.scalars(select(Calendar).where(Calendar.name == "Russia, office hours (Moscow)"))).one()
    # One settings form per queue, nothing else posting to a queue's own address.
    assert sorted(re.findall(r'<form id="queue-([a-z0-9_-]+)" method="post" action="/console/admin/queues/\1"',
                             page)) == sorted(slugs)
    assert "/handover" not in page and "/csat" not in page
    r = await save_queue(client, "billing", name="Billing and payments", assignment_mode="round_robin",
                         return_after_minutes="45", calendar_id=str(office.id), default_wait_minutes="30",
                         bot_answers_while_waiting="on", csat_enabled="on", csat_delay_minutes="10")
    assert r.status_code == 303
    async with sessionmaker() as s:
        billing = (await s.scalars(select(Team).where(Team.slug == "billing"))).one()
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "team"))).all()
    assert (billing.name, billing.assignment_mode.value, billing.return_after_minutes, billing.calendar_id,
            billing.default_wait_minutes, billing.bot_answers_while_waiting, billing.csat_enabled,
            billing.csat_delay_minutes) == ("Billing and payments", "round_robin", 45, office.id, 30, True, True, 10)
    assert sorted(actions) == ["queue.csat", "team.handover", "team.update"]  # each room audits its part
    # Saved again as shown: nothing changes, nothing more is audited (each room audits only changes).
    assert (await save_queue(client, "billing")).status_code == 303
    async with sessionmaker() as s:
        again = (await s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "team"))).all()
    assert sorted(again) == sorted(actions)
    # An unknown calendar is refused with its reason, and nothing of the form is saved.
    r = await save_queue(client, "billing", name="Renamed", calendar_id="999999")
    kind, text = await flash_after(client, r)
    assert kind == "error" and "calendar" in text
    async with sessionmaker() as s:
        assert (await s.scalars(select(Team.name).where(Team.slug == "billing"))).one() == "Billing and payments"
    # The former per-part routes are gone.
    for old in ("/console/admin/queues/billing/handover", "/console/admin/queues/billing/csat"):
        assert (await post_form(client, "/console/admin/queues", old, {})).status_code in (404, 405)

