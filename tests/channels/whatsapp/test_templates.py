"""WhatsApp: approved templates (listed, cached, refreshed, sent outside the window), the typing indicator, and the
delivery state of a message sent in parts. Over real HTTP against the local Graph API stand-in."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.whatsapp.adapter import CHANNEL, RETIRED_TEMPLATES_TASK, TEMPLATES_JOB
from core.clock import ManualClock
from core.db.base import utcnow
from core.jobs import service as tasks
from core.jobs.models import TaskState
from core.outbox.models import OutboxMessage, OutboxPart
from core.provider_templates.models import ProviderTemplate
from core.provider_templates.service import TEMPLATE_CHANNELS, render, template_row
from core.tickets.models import Ticket
from core.users.models import Role
from tests.channels.whatsapp.graphapi import WABA_ID, FakeGraphAPI, status, template, text_message
from tests.channels.whatsapp.test_whatsapp import WA, graph, inbound, outbox_rows, post, running, wa_app
from tests.conftest import make_user
from tests.console.conftest import csrf_of, login
from tests.support.waiting import wait_for

__all__ = ["graph"]  # the fixture, shared with test_whatsapp

ORDER = template("order_ready", "Hello {{1}}, your order {{2}} is ready.")
THANKS = template("thanks", "Thank you for writing to us.", language="ru")
PAUSED = template("old_promo", "Sale: {{1}}", status="PAUSED")


def catalogue() -> list[dict[str, Any]]:
    return [ORDER, THANKS, PAUSED,
            template("with_image", "See {{1}}", components=[{"type": "HEADER", "format": "IMAGE"},
                                                            {"type": "BODY", "text": "See {{1}}"}]),
            template("named", "Hi {{first_name}}"),
            template("fresh", "Pending {{1}}", status="PENDING"),
            {"name": ["not", "a", "name"], "language": "en", "status": "APPROVED"}]


def test_template_rows() -> None:
    row = template_row(ORDER)
    assert row is not None and (row["param_count"], row["supported"], row["status"]) == (2, True, "APPROVED")
    image = template_row(catalogue()[3])
    assert image is not None and image["supported"] is False and "header" in str(image["reason"])
    named = template_row(catalogue()[4])
    assert named is not None and named["supported"] is False and "named" in str(named["reason"])
    gap = template_row(template("gap", "A {{1}} and {{3}}"))
    assert gap is not None and gap["supported"] is False and "numbered" in str(gap["reason"])
    assert template_row(catalogue()[6]) is None and template_row("x") is None
    assert CHANNEL in TEMPLATE_CHANNELS


def test_hostile_template_lists_never_raise() -> None:
    """Odd items are kept as not supported with the reason (or skipped without a key); none stops the read."""
    odd = {
        "superscript": "Hi {{²}}",  # "²".isdigit() is True, int("²") raises
        "arabic_digit": "Hi {{١}}",
        "spaced": "Hi {{ 1 }} and {{2}}",
        "too_many": " ".join(f"{{{{{n}}}}}" for n in range(1, 103)),
        "huge_number": "Hi {{999}}",
        "long_body": "x" * 5000,
        "nested": "{{{{1}}}}",
        "empty": "",
    }
    rows = {name: template_row(template(name, body)) for name, body in odd.items()}
    for name in ("superscript", "arabic_digit"):
        row = rows[name]
        assert row is not None and row["supported"] is False and "named" in str(row["reason"]), name
    spaced = rows["spaced"]
    assert spaced is not None and (spaced["supported"], spaced["param_count"]) == (True, 2)
    assert render(spaced["body"], ["A", "B"]) == "Hi A and B" and render("{{²}} {{1}}", ["A"]) == "{{²}} A"
    for name in ("too_many", "huge_number", "long_body", "empty"):
        row = rows[name]
        assert row is not None and row["supported"] is False and row["reason"], name
    assert len(str(rows["long_body"]["body"])) <= 4096  # type: ignore[index]
    weird = [{"name": "n", "language": "en", "status": "APPROVED", "category": 7,
              "components": [None, 5, {"type": ["BODY"]}, {"type": "BODY", "text": {"x": 1}},
                             {"type": "BUTTONS", "buttons": {"a": "{{1}}"}}, {"type": "HEADER", "format": None}]},
             {"name": "n2", "language": "en", "status": "APPROVED", "components": "not a list"},
             {"name": "x" * 600, "language": "en", "status": "APPROVED"}, {"name": "n3", "language": None}, [], None]
    parsed = [template_row(item) for item in weird]
    assert [p is not None and p["supported"] for p in parsed] == [False, False, False, False, False, False]
    first = parsed[0]
    assert first is not None and first["category"] is None and "button" in str(first["reason"])


async def templates_in(sm: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str, bool]]:
    async with sm() as session:
        rows = (await session.scalars(select(ProviderTemplate).order_by(ProviderTemplate.name))).all()
    return [(t.name, t.language, t.status, t.supported) for t in rows]


async def test_templates_are_read_by_the_adapters_job_and_on_demand(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    _, token = await make_user(sessionmaker, Role.agent, "wa-templates@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    graph.templates = catalogue()
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, RETIRED_TEMPLATES_TASK, WABA_ID, utcnow())
    async with running(wa_app(db_url, tmp_path, graph, waba_id=WABA_ID)) as (adapter, client):
        # Read by the adapter's job as it starts: every page (2 a page here).
        rows = await wait_for(lambda: templates_in(sessionmaker), "the templates are cached")
        assert [r[0] for r in rows] == ["fresh", "named", "old_promo", "order_ready", "thanks", "with_image"]

        def read_and_rearmed() -> Any:  # the rows land before the run ends and the next one is set
            job = adapter.ctx.jobs.get(TEMPLATES_JOB)
            if job is None or job.next_run is None:
                return None
            return job if job.next_run - adapter.ctx.jobs.clock.now() > timedelta(minutes=55) else None

        job = await wait_for(read_and_rearmed, "the templates job is done and armed for the next read")
        assert job.lease == f"{TEMPLATES_JOB}:{WABA_ID}"
        pages = [c for c in graph.calls if c[1].endswith("/message_templates")]
        assert len(pages) == 4 and pages[1][2]["after"] == "2"
        assert adapter.health.details["templates"] == 6 and adapter.health.details["templates_skipped"] == 1
        # A due task of the kind the list was once read on completes without being armed again.
        async def retired() -> bool:
            async with sessionmaker() as session:
                old = await tasks.get(session, RETIRED_TEMPLATES_TASK, WABA_ID)
            return old is not None and old.state == TaskState.done

        await wait_for(retired, "the old task is done")

        listed = (await client.get("/channels/whatsapp/templates", headers=auth)).json()
        assert [(t["name"], t["language"], t["param_count"]) for t in listed] == [
            ("order_ready", "en_US", 2), ("thanks", "ru", 0)]
        assert (await client.get("/channels/whatsapp/templates")).status_code == 401

        graph.templates = [ORDER]
        r = await client.post("/channels/whatsapp/templates/refresh", headers=auth)
        assert r.json() == {"templates": 1}
        assert [r[0] for r in await templates_in(sessionmaker)] == ["order_ready"]
        graph.templates_error_next = 1
        r = await client.post("/channels/whatsapp/templates/refresh", headers=auth)
        assert r.status_code == 503 and "HTTP 500" in r.json()["message"]
        assert [r[0] for r in await templates_in(sessionmaker)] == ["order_ready"]  # the old list is kept


async def test_the_job_retries_a_failed_read_soon_and_skips_a_fresh_list(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    _, token = await make_user(sessionmaker, Role.agent, "wa-tpl-clock@test.example")
    clock = ManualClock()
    graph.templates, graph.templates_error_next = catalogue(), 1
    app = wa_app(db_url, tmp_path, graph, waba_id=WABA_ID, jobs_clock=clock)
    async with running(app) as (adapter, client):

        def pages() -> int:
            return sum(c[1].endswith("/message_templates") for c in graph.calls)

        def job() -> Any:
            health = adapter.ctx.jobs.get(TEMPLATES_JOB)
            assert health is not None
            return health

        await wait_for(lambda: job().state == "backing_off", "the failed read backs off")
        assert "HTTP 500" in adapter.health.details["templates_error"] and await templates_in(sessionmaker) == []
        assert timedelta(0) < job().next_run - clock.now() <= timedelta(minutes=5)  # sooner than the hour
        clock.advance(300)
        await wait_for(lambda: templates_in(sessionmaker), "the retry reads the list")
        assert "templates_error" not in adapter.health.details and pages() == 4 + 1

        def asleep_for_the_hour() -> bool:
            # The tick is over (during a tick `next_run` still shows the run it started) and a sleep of an hour is
            # pending (another job may have one too: both are needed). Advancing the clock during a tick would
            # schedule the next one an hour after the advanced time.
            due = job().next_run
            return (due is not None and due - clock.now() > timedelta(minutes=50)
                    and any(3500 < left <= 3600 for left in clock.pending_sleeps()))

        # The button stores the list 50 minutes later: the hourly tick finds it fresh and does not read it.
        await wait_for(asleep_for_the_hour, "the job waits for its hour")
        clock.advance(3000)
        r = await client.post("/channels/whatsapp/templates/refresh", headers={"Authorization": f"Bearer {token}"})
        assert r.json() == {"templates": 6} and pages() == 8 + 1
        runs = job().runs
        clock.advance(600)
        await wait_for(lambda: job().runs > runs and asleep_for_the_hour(), "the hourly tick ran")
        assert pages() == 8 + 1
        clock.advance(3600)
        await wait_for(lambda: pages() == 12 + 1, "the next hour reads it")
        await adapter.stop()  # the job is the adapter's: a rebuilt channel (the console's setup) starts its own
        assert job().state == "stopped" and job().next_run is None


async def test_a_template_reply_outside_the_window_api_and_console(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    _, token = await make_user(sessionmaker, Role.agent, "wa-tpl-agent@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    graph.templates = catalogue()
    late = "79001110000"
    graph.window_closed.add(late)
    async with running(wa_app(db_url, tmp_path, graph, waba_id=WABA_ID)) as (_adapter, client):
        await wait_for(lambda: templates_in(sessionmaker), "the templates are cached")
        old = str(int(time.time()) - 25 * 3600)
        assert (await post(client, text_message(late, "wamid.L1", "Hello", timestamp=old))).text == "ok"
        await wait_for(lambda: outbox_rows(sessionmaker, late), "the bot's answer is queued")
        ticket_id = (await inbound(sessionmaker))[0].ticket_id
        url = f"/tickets/{ticket_id}/template-reply"

        async def answer(body: Any) -> httpx.Response:
            return await client.post(url, headers=auth, json=body)

        bad = [({"name": "order_ready", "language": "en_US", "params": ["Kerry"]}, 422, "takes 2 parameters"),
               ({"name": "order_ready", "language": "en_US", "params": ["Kerry", "  "]}, 422, "parameter 2 is empty"),
               ({"name": "order_ready", "language": "en_US", "params": ["Kerry", "A\nB"]}, 422, "line break"),
               ({"name": "order_ready", "language": "en_US", "params": ["K", "x" * 1100]}, 422, "over 1024"),
               ({"name": "order_ready", "language": "en_US", "params": ["K" * 600, "x" * 600]}, 422, "filled"),
               ({"name": "old_promo", "language": "en_US", "params": ["x"]}, 409, "paused"),
               ({"name": "with_image", "language": "en_US", "params": ["x"]}, 409, "header"),
               ({"name": "nope", "language": "en_US", "params": []}, 404, "no template"),
               ({"name": "order_ready", "language": "en_US", "params": "x"}, 422, ""),
               ({"name": "order_ready", "language": "en_US", "extra": 1}, 422, ""),
               ({"name": "", "language": "en_US"}, 422, "")]
        for body, code, reason in bad:
            r = await answer(body)
            assert r.status_code == code, (body, r.text)
            assert reason in r.text, (reason, r.text)
        r = await answer({"name": "order_ready", "language": "en_US", "params": ["Kerry", "A-17"]})
        assert r.status_code == 201, r.text
        assert r.json()["text"] == "Hello Kerry, your order A-17 is ready."
        sent = await wait_for(lambda: next((b for b in graph.sent if b["type"] == "template"), None))
        assert sent["to"] == late and sent["template"] == {
            "name": "order_ready", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Kerry"},
                                                           {"type": "text", "text": "A-17"}]}]}

        # The console: the closed window offers the approved templates; the form sends one.
        await make_user(sessionmaker, Role.agent, "wa-tpl-console@test.example")
        assert (await login(client, "wa-tpl-console@test.example")).status_code == 303
        async with sessionmaker() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
        page_url = f"/console/tickets/{ticket.number}"
        page = (await client.get(page_url)).text
        assert 'id="template-form"' in page and 'value="order_ready|en_US"' in page and 'value="thanks|ru"' in page
        assert "old_promo" not in page and "with_image" not in page
        assert page.count('name="params"') == 2
        form = {"csrf_token": csrf_of(page), "template": "thanks|ru", "params": ["", ""]}
        r = await client.post(f"{page_url}/template-reply", data=form, headers={"Referer": f"http://t{page_url}"})
        assert r.status_code == 303, r.text
        await wait_for(lambda: sum(b["type"] == "template" for b in graph.sent) == 2)
        assert graph.sent[-1]["template"] == {"name": "thanks", "language": {"code": "ru"}, "components": []}
        form = {"csrf_token": csrf_of(page), "template": "thanks|ru", "params": ["surplus", ""]}
        r = await client.post(f"{page_url}/template-reply", data=form, headers={"Referer": f"http://t{page_url}"})
        assert r.status_code == 303
        assert "This template takes 0 parameters" in (await client.get(page_url)).text
        # The page's button reads the list again (a template approved a minute ago).
        graph.templates = [*catalogue(), template("new_one", "Welcome back")]
        r = await client.post("/console/whatsapp/templates/refresh", data={
            "csrf_token": csrf_of(page), "next": page_url}, headers={"Referer": f"http://t{page_url}"})
        assert (r.status_code, r.headers["location"]) == (303, page_url)
        page = (await client.get(page_url)).text
        assert "Templates read from WhatsApp: 7." in page and 'value="new_one|en_US"' in page

        # Paused at Meta after the list was read: the send fails for good, in words.
        graph.templates = [{**ORDER, "status": "PAUSED"}, THANKS]
        r = await answer({"name": "order_ready", "language": "en_US", "params": ["Kerry", "A-18"]})
        assert r.status_code == 201
        message_id = r.json()["id"]

        async def failed() -> OutboxMessage | None:
            async with sessionmaker() as session:
                row = (await session.scalars(select(OutboxMessage).where(
                    OutboxMessage.message_id == message_id))).one()
            return row if row.status.value == "failed" else None

        row = await wait_for(failed, "the paused template fails for good")
        assert row.attempts == 1 and "the template is paused" in (row.last_error or "")
        # A free-form reply in the closed window still fails as before (decision 208).
        r = await client.post(f"/tickets/{ticket_id}/reply", headers=auth, json={"text": "Hi"})
        assert r.status_code == 201
        message_id = r.json()["id"]
        row = await wait_for(failed, "the free-form reply fails for good")
        assert "24-hour" in (row.last_error or "")


async def test_typing_marks_the_latest_message_read_rate_limited(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    await make_user(sessionmaker, Role.agent, "wa-typing@test.example")
    async with running(wa_app(db_url, tmp_path, graph, typing_seconds=3600)) as (adapter, client):
        assert (await post(client, text_message(WA, "wamid.T1", "Hello"))).text == "ok"
        assert (await post(client, text_message(WA, "wamid.T2", "my internet is down"))).text == "ok"
        ticket_id = (await inbound(sessionmaker))[-1].ticket_id
        async with sessionmaker() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
        assert (await login(client, "wa-typing@test.example")).status_code == 303
        page_url = f"/console/tickets/{ticket.number}"
        token = csrf_of((await client.get(page_url)).text)
        for _ in range(3):
            r = await client.post(f"{page_url}/presence", data={"csrf_token": token, "state": "typing",
                                                                "what": "reply"},
                                  headers={"Referer": f"http://t{page_url}"})
            assert r.status_code == 204, r.text
        await wait_for(lambda: graph.read_marks, "the typing indicator is sent")
        assert graph.read_marks == [{"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.T2",
                                     "typing_indicator": {"type": "text"}}]
        # Rate-limited per customer beyond the console's own throttle; a stranger's number sends nothing.
        await adapter.send_typing(WA)
        await adapter.send_typing("79990000000")
        assert len(graph.read_marks) == 1 and adapter.health.details["typing_sent"] == 1


async def test_a_reply_in_parts_shows_its_least_advanced_part(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI
) -> None:
    _, token = await make_user(sessionmaker, Role.agent, "wa-parts@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        assert (await post(client, text_message(WA, "wamid.P1", "Hello"))).text == "ok"
        await wait_for(lambda: len(graph.sent) == 1)
        ticket_id = (await inbound(sessionmaker))[0].ticket_id
        r = await client.post(f"/tickets/{ticket_id}/reply", headers=auth, json={"text": "word " * 1700})
        assert r.status_code == 201
        await wait_for(lambda: len(graph.sent) == 4, "three parts sent")
        first, second, third = (b["_id"] for b in graph.sent[1:])

        def row() -> Any:
            return outbox_row(sessionmaker, r.json()["id"])

        sent = await wait_for(lambda: _sent(row), "the reply is recorded as sent")
        assert sent.provider_message_id == first
        async with sessionmaker() as session:
            parts = (await session.scalars(select(OutboxPart).where(OutboxPart.outbox_id == sent.id)
                                           .order_by(OutboxPart.part))).all()
        assert [(p.part, p.provider_message_id) for p in parts] == [(0, first), (1, second), (2, third)]

        for wamid, state in ((first, "read"), (second, "delivered")):
            assert (await post(client, status(wamid, state, WA))).text == "ok"
        assert "delivery" not in (await row()).payload  # the third part has no state: it is the least advanced
        assert (await post(client, status(third, "read", WA, "1764500300"))).text == "ok"
        assert (await row()).payload["delivery"] == {"state": "delivered", "at": "2025-11-30T10:56:40+00:00",
                                                     "parts": 3}
        assert (await post(client, status(second, "read", WA, "1764500400"))).text == "ok"
        assert (await row()).payload["delivery"]["state"] == "read"
        assert (await post(client, status(second, "delivered", WA))).text == "ok"  # late: no step back
        assert (await row()).payload["delivery"]["state"] == "read"


async def outbox_row(sessionmaker: async_sessionmaker[AsyncSession], message_id: int) -> OutboxMessage:
    """The outbox row of a reply, read afresh."""
    async with sessionmaker() as session:
        return (await session.scalars(select(OutboxMessage).where(OutboxMessage.message_id == message_id))).one()


async def _sent(row: Any) -> OutboxMessage | None:
    value: OutboxMessage = await row()
    return value if value.status.value == "sent" else None


@pytest.mark.parametrize("order", [("failed",), ("sent", "failed")])
async def test_a_failed_part_fails_the_message(
    db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, graph: FakeGraphAPI,
    order: tuple[str, ...],
) -> None:
    _, token = await make_user(sessionmaker, Role.agent, "wa-part-fail@test.example")
    auth = {"Authorization": f"Bearer {token}"}
    async with running(wa_app(db_url, tmp_path, graph)) as (_adapter, client):
        assert (await post(client, text_message(WA, "wamid.F1", "Hello"))).text == "ok"
        await wait_for(lambda: len(graph.sent) == 1)
        ticket_id = (await inbound(sessionmaker))[0].ticket_id
        r = await client.post(f"/tickets/{ticket_id}/reply", headers=auth, json={"text": "word " * 1000})
        await wait_for(lambda: len(graph.sent) == 3, "two parts sent")
        first, second = (b["_id"] for b in graph.sent[1:])

        def row() -> Any:
            return outbox_row(sessionmaker, r.json()["id"])

        await wait_for(lambda: _sent(row), "the reply is recorded as sent")
        for state in order:
            errors = [{"code": 131026, "title": "Message undeliverable"}] if state == "failed" else None
            assert (await post(client, status(second, state, WA, errors=errors))).text == "ok"

        async def failed() -> OutboxMessage | None:
            value = await row()
            return value if (value.payload.get("delivery") or {}).get("state") == "failed" else None

        value = await wait_for(failed, "the failed part fails the message")
        assert value.payload["delivery"]["error"] == "part 2 of 2: 131026: Message undeliverable"
        assert "part 2 of 2" in (value.last_error or "")
        assert (await post(client, status(first, "read", WA))).text == "ok"
        assert (await failed()) is not None  # failed is final
