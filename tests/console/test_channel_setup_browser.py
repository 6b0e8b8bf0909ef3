"""Admin → Channels in a real browser: a Telegram bot added at 1440 px in English (its bad token shown by the
connection test), the page on a 390 px phone in Russian; no overflow, no script errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.users.models import User
from tests.channels.telegram.botapi import running_bot_api
from tests.console.conftest import LiveServer, People
from tests.console.test_working_day_browser import DESKTOP, PHONE, overflow, sign_in, tables_overflowing
from tests.support.browser import needs_chromium, shot


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_channels_page_at_1440_in_english_and_on_a_phone_in_russian(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path) -> None:
    errors: list[Any] = []
    async with running_bot_api() as api:
        context = await browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-US")
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(exc))
        await sign_in(page, "admin@test.example")
        await page.goto("/console/admin/channels")
        await page.click('a[data-add="telegram"]')
        await page.wait_for_url("**/console/admin/channels/new?kind=telegram")
        await page.fill('input[name="name"]', "support_bot")
        await page.fill('input[name="token"]', "42:not-a-real-token")
        await page.fill('input[name="base_url"]', api.base_url)
        await page.fill('input[name="base_file_url"]', api.base_file_url)
        await page.click('#channel-form button[type="submit"]:not([form])')
        await page.wait_for_selector('[data-secret-set="token"]')
        assert "set — leave empty to keep" in await page.inner_text('[data-secret-set="token"]')
        assert await page.input_value('input[name="token"]') == ""
        await page.click('button[form="probe-form"]')
        result = page.locator('.probe-result li[data-step="telegram"]')
        await result.wait_for()
        assert await result.get_attribute("data-reason") == "bad_token"
        assert "Telegram does not accept this token" in await result.inner_text()
        assert await overflow(page) <= 0
        await shot(page, tmp_path, "console-channel-setup-en")
        await page.goto("/console/admin/channels")
        assert "Telegram bot" in await page.inner_text("tr[data-config]")
        assert await overflow(page) <= 0 and await tables_overflowing(page) == []
        await context.close()

    async with sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == people.admin.id).values(language="ru"))
    context = await browser.new_context(base_url=live_server.url, viewport=PHONE, locale="ru-RU",
                                        is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(exc))
    await sign_in(page, "admin@test.example")
    await page.goto("/console/admin/channels")
    assert "Каналы, настроенные здесь" in await page.inner_text("section.channel-setup")
    assert await overflow(page) <= 0
    await shot(page, tmp_path, "console-channel-setup-ru-phone")
    await page.click("tr[data-config] a")
    await page.wait_for_selector("#channel-form")
    assert "Токен бота" in await page.inner_text("#channel-form")
    assert await overflow(page) <= 0
    await context.close()
    assert errors == []
