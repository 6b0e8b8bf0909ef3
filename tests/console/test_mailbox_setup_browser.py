"""Issue 16's "Done when" in a real browser: a mailbox added in Admin → Channels (1440 px, English) passes its
connection test, receives mail from the test Dovecot without a restart (the ticket shows up in the same browser's
inbox), and once switched off in the page its reader stops and the next mail,
though in the mailbox, becomes no ticket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.email.adapter import EmailChannel
from core.tickets.models import Ticket
from tests.channels.email.conftest import PASSWORD, Dovecot, SmtpSink, dovecot, smtp_sink  # noqa: F401  (fixtures)
from tests.channels.email.test_channel import mail
from tests.console.conftest import People
from tests.console.test_channel_setup import inbound_email
from tests.console.test_working_day_browser import DESKTOP, overflow, sign_in
from tests.support.browser import needs_chromium, shot
from tests.support.server import LiveServer
from tests.support.waiting import wait_for

# Generous: the page waits out a mailbox login and a poll on a machine that six engineers share.
SLOW_MS = 60_000


async def tickets(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_mailbox_added_in_the_browser_receives_mail_and_stops_when_switched_off(
        browser: Any, live_server: LiveServer, people: People, dovecot: Dovecot,  # noqa: F811 (the imported fixture)
        smtp_sink: SmtpSink,  # noqa: F811
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    state = live_server.app.state.switchboard
    assert state.channels.get("email") is None  # the environment configures no e-mail
    user = dovecot.add_user()
    errors: list[Any] = []
    context = await browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-US")
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(exc))
    await sign_in(page, "admin@test.example")

    # Admin → Channels → Add a mailbox, typed in the page (its SMTP server: the stand-in; replies are not this
    # test's business, but a mailbox without SMTP is refused when the environment has none).
    await page.click('a[href="/console/admin/users"]')
    await page.wait_for_url("**/console/admin/users")
    await page.click('a[href="/console/admin/channels"]')
    await page.wait_for_url("**/console/admin/channels")
    await page.click('a[data-add="email"]')
    await page.wait_for_url("**/console/admin/channels/new?kind=email")
    form = page.locator("#channel-form")
    await form.locator('input[name="name"]').fill(user)
    await form.locator('input[name="address"]').fill(f"{user}@support.example")
    await form.locator('input[name="host"]').fill(dovecot.host)
    await form.locator('input[name="port"]').fill(str(dovecot.port))
    await form.locator('select[name="security"]').select_option("none")
    await form.locator('input[name="username"]').fill(user)
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('input[name="poll_seconds"]').fill("2")
    await form.locator('select[name="first_start"]').select_option("all")
    await form.locator('input[name="smtp.host"]').fill(smtp_sink.host)
    await form.locator('input[name="smtp.port"]').fill(str(smtp_sink.port))
    await form.locator('select[name="smtp.security"]').select_option("none")
    assert await form.locator('input[name="enabled"]').is_checked()
    await page.click('#channel-form button[type="submit"]:not([form])')
    await page.wait_for_selector('[data-secret-set="password"]', timeout=SLOW_MS)
    assert await page.input_value('input[name="password"]') == ""
    config_id = int(page.url.rsplit("/", 1)[1])

    # Test connection: the IMAP login succeeds, said in words.
    await page.click('button[form="probe-form"]')
    result = page.locator('.probe-result[data-ok="yes"] li[data-step="imap"]')
    await result.wait_for(timeout=SLOW_MS)
    assert await result.get_attribute("data-reason") == ""
    assert "connected" in await result.inner_text()
    assert PASSWORD not in await page.content()
    assert await overflow(page) <= 0
    await shot(page, tmp_path, "admin-channel-mailbox-1440-en")

    # A mail arrives: its ticket appears in the inbox of the same browser, no restart.
    await page.goto("/console/inbox")
    await page.wait_for_selector('.live-indicator[data-live-state="live"]', timeout=SLOW_MS)
    await dovecot.append(user, mail("first@customer.example", "My internet is down since morning",
                                    subject="Internet down"))
    row = page.locator("tr[data-ticket]", has_text="Internet down")
    await row.wait_for(timeout=SLOW_MS)
    assert await page.locator("tr[data-ticket]").count() == 1

    # Switched off in the list: the page says so, and the mailbox's reader job stops (the condition waited on).
    adapter = state.channels.get("email")
    assert isinstance(adapter, EmailChannel)
    worker = adapter.workers[user]
    await page.goto("/console/admin/channels")
    config_row = page.locator(f'tr[data-config="{config_id}"]')
    assert "connected" in await config_row.inner_text()
    await config_row.locator('button[type="submit"]').click()
    await page.locator(f'tr[data-config="{config_id}"] .badge.state-stopped').wait_for(timeout=SLOW_MS)

    def reader_stopped() -> bool:
        job = state.jobs.get(worker.job_name)
        return (state.channels.get("email") is None and adapter.health.state == "stopped" and worker.stopping
                and job is not None and job.state == "stopped")

    await wait_for(reader_stopped, what="the mailbox's reader stopped", timeout=SLOW_MS / 1000)
    await page.reload()  # drawn again: the live channels table no longer lists a running e-mail reader
    assert "Switch on" in await config_row.inner_text()
    assert await page.locator('tr[data-channel="email"]').count() == 0
    await shot(page, tmp_path, "admin-channels-mailbox-off-1440-en")

    # The next mail finds nobody reading: it stays in the mailbox, waiting. Switched on again, the new reader takes
    # it up from the mailbox's read position (so it was waiting there, not lost nor read by a stopped reader).
    await dovecot.append(user, mail("second@customer.example", "Still down", subject="Still down"))
    assert state.jobs.get(worker.job_name).state == "stopped"
    assert "messages=2" in dovecot.doveadm("mailbox", "status", "-u", user, "messages", "INBOX")  # it is there
    assert await tickets(sessionmaker) == 1 and not await inbound_email(sessionmaker, 2)
    await config_row.locator('button[type="submit"]').click()
    await page.wait_for_url("**/console/admin/channels")
    await wait_for(lambda: inbound_email(sessionmaker, 2), what="the waiting mail read once switched on",
                   timeout=SLOW_MS / 1000)
    await page.goto("/console/inbox")
    await page.locator("tr[data-ticket]", has_text="Still down").wait_for(timeout=SLOW_MS)
    assert await tickets(sessionmaker) == 2
    await context.close()
    assert errors == []
