"""The console in a real browser (Debian's Chromium through Playwright) against a real uvicorn server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.calendars import service as calendar_service
from core.canned import service as canned_service
from core.canned.schemas import CannedResponseCreate
from core.customers.models import ChannelIdentity
from core.ingest.schemas import InboundMessage, SenderInfo
from core.orders import service as orders
from core.quarantine.models import QuarantinedPayload
from core.sla import service as sla_service
from core.sla.schemas import SlaPolicyCreate
from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import LiveServer, People
from tests.support.browser import shot

VIEWPORT = {"width": 1366, "height": 860}


async def new_page(browser: Any, server: LiveServer) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(base_url=server.url, viewport=VIEWPORT, locale="en-US")
    page = await context.new_page()
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return context, page, dialogs


async def sign_in(page: Any, email: str, password: str = "password-123") -> None:
    await page.goto("/console/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.press("#password", "Enter")
    await page.wait_for_url("**/console/inbox")



async def test_agent_sees_new_ticket_live_takes_it_and_replies(
    browser: Any, live_server: LiveServer, people: People, tmp_path: Path
) -> None:
    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "agent@test.example")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    assert await page.locator("tr[data-ticket]").count() == 0

    async with httpx.AsyncClient(base_url=live_server.url) as client:
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("b-1", "Телевизор показывает чёрный экран, помогите", sender="c-77"))
        assert r.status_code == 201, r.text
        number = r.json()["ticket_number"]

    # Appears without a reload: the SSE event makes the page re-fetch its live region.
    row = page.locator(f'tr[data-ticket="{number}"]')
    await row.wait_for(timeout=10_000)
    assert await page.locator('[data-count="all"]').inner_text() == "1"
    await row.locator("a.ticket-link").click()
    await page.wait_for_url(f"**/console/tickets/{number}")
    await page.click("#take-button")
    await page.wait_for_selector(".flash")
    assert "agent" in await page.locator("#assignee").inner_text()

    await page.fill("#reply-text", "Перезагрузите приставку, пожалуйста — Ольга")
    await page.keyboard.press("Control+Enter")
    await page.wait_for_url(f"**/console/tickets/{number}")
    agent_msg = page.locator(".msg-agent").last
    await agent_msg.wait_for()
    assert "Перезагрузите приставку" in await agent_msg.inner_text()
    # The REST channel accepts it; the live region shows the delivery state change without a reload.
    await page.wait_for_selector('.msg-agent [data-delivery="sent"]', timeout=10_000)
    assert dialogs == []
    await context.close()


async def test_agent_cannot_open_admin_or_board(browser: Any, live_server: LiveServer, people: People) -> None:
    context, page, _ = await new_page(browser, live_server)
    await sign_in(page, "agent@test.example")
    assert await page.locator('a[href="/console/admin/users"]').count() == 0
    for url in ("/console/admin/users", "/console/admin/canned", "/console/board"):
        response = await page.goto(url)
        assert response is not None and response.status == 403
        assert "Access denied" in await page.locator("h1").inner_text()
    await context.close()


PAYLOADS = (
    '<script>window.pwned = "script"; alert("script")</script>',
    '<img src=x onerror="window.pwned=\'img\'; alert(\'img\')">',
    '<svg onload="window.pwned=\'svg\'"></svg><a href="javascript:window.pwned=1">link</a>',
)


async def test_customer_payloads_never_execute(browser: Any, live_server: LiveServer, people: People) -> None:
    ingest = live_server.app.state.switchboard.ingest
    numbers = []
    for i, channel in enumerate(("email", "telegram", "webchat")):
        text = f"Help {channel} " + " ".join(PAYLOADS)
        html = None
        if channel == "email":
            html = ("<p>Hello</p>" + "".join(PAYLOADS)
                    + '<img src=x onerror="parent.pwned=\'email\'"><script>parent.pwned="email-script"</script>')
        result = await ingest.ingest(InboundMessage(
            channel=channel, external_message_id=f"xss-{i}", text=text, html=html,
            subject=f'<script>window.pwned="subject"</script> {channel}',
            sender=SenderInfo(external_id=f"xss-{channel}", name='<img src=x onerror="window.pwned=\'name\'">'),
            thread_key=f"xss-{channel}"))
        numbers.append(result.ticket_number)

    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "agent@test.example")
    for number in numbers:
        await page.wait_for_selector(f'tr[data-ticket="{number}"]')
    assert await page.evaluate("typeof window.pwned") == "undefined"
    for number in numbers:
        await page.goto(f"/console/tickets/{number}")
        body = page.locator(".msg-customer .msg-body").first
        assert "<script>" in await body.inner_text()  # shown as text, not run
        for details in await page.locator("details.email-html").all():
            await details.locator("summary").click()
            frame = details.locator("iframe")
            await frame.wait_for()
            assert await frame.get_attribute("sandbox") == ""
        await page.wait_for_timeout(300)
        assert await page.evaluate("typeof window.pwned") == "undefined", number
    assert dialogs == []
    await context.close()


async def seed_demo(server: LiveServer, sessionmaker: async_sessionmaker[AsyncSession], admin: User) -> list[str]:
    """A few tickets on several channels, an order and canned responses, for the screenshots."""
    ingest = server.app.state.switchboard.ingest
    numbers = []
    async with sessionmaker() as session, session.begin():
        # An SLA on every escalated ticket, so the inbox shows its countdowns.
        calendar = next(c for c in await calendar_service.list_all(session)
                        if c.name == calendar_service.ALWAYS_OPEN)
        await sla_service.create_policy(session, SlaPolicyCreate(
            name="Standard", calendar_id=calendar.id, first_response_minutes=60, resolution_minutes=8 * 60), admin)
    samples = [
        ("email", "ivan@example.ru", "Иван Петров", "У меня не работает интернет с утра, роутер мигает красным",
         "Не работает интернет"),
        ("telegram", "tg-5550123", "Мария Смирнова", "Где мой заказ ORD-100200? Обещали доставить вчера", None),
        ("webchat", "wc-session-1", "John Smith", "I was charged twice this month, please help", None),
        ("rest", "crm-77", "Ольга Иванова",
         "Хочу расторгнуть договор. Суперпупердлинноеслововкотороминетпробеловчтобыпроверитьпереносстрок", None),
        ("email", "peter@example.com", "Peter Jones", "My TV shows a black screen after the update", "TV"),
    ]
    for i, (channel, sender, name, text, subject) in enumerate(samples):
        result = await ingest.ingest(InboundMessage(
            channel=channel, external_message_id=f"seed-{i}", text=text, subject=subject,
            sender=SenderInfo(external_id=sender, name=name, email=sender if "@" in sender else None),
            thread_key=sender))
        numbers.append(result.ticket_number)
    async with sessionmaker() as session, session.begin():
        maria = (await session.scalars(select(ChannelIdentity.customer_id).where(
            ChannelIdentity.external_id == "tg-5550123"))).one()
        await orders.upsert(session, number="ORD-100200", status="shipped",
                            description="Роутер Keenetic Giga, курьерская доставка", customer_id=maria)
        await canned_service.create(session, CannedResponseCreate(
            title="Перезагрузка роутера", shortcut="reboot", language="ru",
            body="Здравствуйте, {{customer_name}}! По обращению {{ticket_number}}: выключите роутер на 30 секунд."),
            admin)
        session.add(QuarantinedPayload(channel="telegram", reason="update has neither message nor callback_query",
                                       payload='{"update_id": 912, "poll": {"id": "5"}}',
                                       content_type="application/json"))
        await canned_service.create(session, CannedResponseCreate(
            title="Greeting", shortcut="hello", body="Hello {{customer_name}}, this is {{agent_name}}."), admin)
    return numbers


async def test_supervisor_board_and_screenshots(
    browser: Any, live_server: LiveServer, people: People, tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    numbers = await seed_demo(live_server, sessionmaker, people.admin)

    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "agent@test.example")
    await page.goto(f"/console/tickets/{numbers[0]}")
    await page.click("#take-button")
    await page.wait_for_selector(".flash")
    await page.fill("#reply-text", "Проверяем линию, ответим в течение часа.")
    await page.click("#send-reply")
    await page.wait_for_selector('.msg-agent [data-delivery]')
    await page.goto("/console/inbox")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]')
    await shot(page, tmp_path, "inbox")
    await page.goto(f"/console/tickets/{numbers[1]}")
    await page.select_option("#canned-select", label="Перезагрузка роутера (/reboot)")
    assert "Мария Смирнова" in await page.input_value("#reply-text")
    await shot(page, tmp_path, "ticket")
    await context.close()

    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "super@test.example")
    await page.goto("/console/board")
    assert await page.locator("svg.chart").count() >= 3
    assert await page.locator('tr[data-agent]').count() >= 2
    await shot(page, tmp_path, "board")
    # Reassign the first open ticket to the supervisor.
    form = page.locator(f'tr[data-ticket="{numbers[2]}"] form')
    await form.locator("select").select_option(str(people.supervisor.id))
    await form.locator("button").click()
    await page.wait_for_selector(".flash")
    assert "reassigned" in (await page.locator(".flash").inner_text()).lower()
    await context.close()

    context, page, dialogs = await new_page(browser, live_server)
    await sign_in(page, "admin@test.example")
    for name in ("users", "queues", "canned", "routing", "sla", "calendars", "channels", "audit"):
        response = await page.goto(f"/console/admin/{name}")
        assert response is not None and response.status == 200
        await shot(page, tmp_path, f"admin-{name}")
    assert dialogs == []
    await context.close()


async def test_whole_story_webchat_customer_to_agent_and_back(
    browser: Any, live_server: LiveServer, people: People
) -> None:
    """A customer writes in the widget, the bot escalates, the agent sees it live, takes it, replies, and the
    customer sees the reply in the widget."""
    agent_ctx, agent, agent_dialogs = await new_page(browser, live_server)
    await sign_in(agent, "agent@test.example")
    await agent.wait_for_selector('.live-indicator[data-live-state="live"]')

    customer_ctx = await browser.new_context(base_url=live_server.url, viewport={"width": 1100, "height": 760},
                                             locale="en-US")
    customer = await customer_ctx.new_page()
    errors: list[Any] = []
    customer.on("pageerror", lambda exc: errors.append(exc))
    await customer.goto("/demo")
    await customer.click(".sbw-btn")
    await customer.fill(".sbw-form textarea", "My TV shows a black screen since this morning")
    await customer.press(".sbw-form textarea", "Enter")
    await customer.wait_for_selector(".sbw-bot", timeout=10_000)  # the bot's escalation notice

    row = agent.locator('tr[data-ticket]', has_text="webchat")
    await row.wait_for(timeout=10_000)
    await row.locator("a.ticket-link").click()
    await agent.click("#take-button")
    await agent.wait_for_selector(".flash")
    await agent.fill("#reply-text", "Hello! Please unplug the set-top box for 30 seconds.")
    await agent.click("#send-reply")
    await agent.wait_for_selector('.msg-agent [data-delivery="sent"]', timeout=10_000)

    await customer.wait_for_selector(".sbw-agent >> text=Please unplug the set-top box", timeout=10_000)
    assert errors == [] and agent_dialogs == []
    await customer_ctx.close()
    await agent_ctx.close()
