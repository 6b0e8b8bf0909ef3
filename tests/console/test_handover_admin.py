"""Console: the bot action per intent (Admin → Intents) and the queues' hand-over settings (Admin → Queues)."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.calendars.models import Calendar
from core.users.models import Team
from tests.console.conftest import People, login, post_form
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
    r = await post_form(client, "/console/admin/queues", "/console/admin/queues/billing/handover", {
        "calendar_id": str(office.id), "default_wait_minutes": "25", "bot_answers_while_waiting": "on"})
    assert await flash_after(client, r) == ("info", "Saved.")
    async with sessionmaker() as s:
        billing = (await s.scalars(select(Team).where(Team.slug == "billing"))).one()
    assert (billing.calendar_id, billing.default_wait_minutes, billing.bot_answers_while_waiting) == (
        office.id, 25, True)

    r = await post_form(client, "/console/admin/queues", "/console/admin/queues/billing/handover",
                        {"calendar_id": "", "default_wait_minutes": "0"})
    kind, text = await flash_after(client, r)
    assert kind == "error" and "default_wait_minutes" in text
    r = await post_form(client, "/console/admin/queues", "/console/admin/queues/billing/handover",
                        {"calendar_id": "", "default_wait_minutes": "20"})
    assert await flash_after(client, r) == ("info", "Saved.")
    async with sessionmaker() as s:
        billing = (await s.scalars(select(Team).where(Team.slug == "billing"))).one()
    assert (billing.calendar_id, billing.default_wait_minutes, billing.bot_answers_while_waiting) == (
        None, 20, False)

