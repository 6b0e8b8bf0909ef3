"""In a real browser: the board shows a rising problem live when the job raises it, and an admin makes a cluster of
what the bot did not understand an intent from the clusters page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.state import AppState
from core.db.base import utcnow
from core.problems.job import RisingProblems
from tests.conftest import REST_HEADERS
from tests.console.conftest import LiveServer, People
from tests.console.test_browser import new_page, sign_in
from tests.core.problems.corpus import CORPUS
from tests.core.problems.helpers import kpis_up_to_date, tickets
from tests.support.browser import shot


async def test_the_board_shows_a_rising_problem_live(browser: Any, live_server: LiveServer, people: People,
                                                     sessionmaker: async_sessionmaker[AsyncSession],
                                                     tmp_path: Path) -> None:
    context, page, _ = await new_page(browser, live_server)
    await sign_in(page, "super@test.example")
    await page.goto("/console/board")
    assert await page.locator(".rising-problems").count() == 0
    # Twelve internet_down tickets in the last minutes, none before: 12x the usual.
    async with sessionmaker() as s, s.begin():
        await tickets(s, utcnow(), 12, intent="internet_down", channel="telegram", reason="needs_human")
    await kpis_up_to_date(sessionmaker)
    state: AppState = live_server.app.state.switchboard
    outcome = await RisingProblems(state.sessionmaker, state.bus, state.clock, state.settings.problems).run_once()
    assert {a.key for a in outcome.raised} == {"internet_down", "telegram"}
    card = page.locator(".rising-problems")
    await card.wait_for()  # the board reloads on the live event
    text = await card.inner_text()
    assert "2 rising problems" in text
    assert "internet_down: 12 tickets in the last 2 h, where there usually are almost none" in text
    await shot(page, tmp_path, "board-rising-problem")
    await context.close()


async def test_an_admin_makes_a_cluster_an_intent(browser: Any, live_server: LiveServer, people: People,
                                                  tmp_path: Path) -> None:
    context, page, dialogs = await new_page(browser, live_server)
    for topic, texts in CORPUS.items():
        for i, text in enumerate(texts):
            r = await page.request.post("/channels/rest/messages", headers=REST_HEADERS, data={
                "external_message_id": f"{topic}-{i}", "sender": {"external_id": f"{topic}-{i}"}, "text": text})
            assert r.status == 201, await r.text()
    await sign_in(page, "admin@test.example")
    await page.click("nav >> text=Problems")
    await page.click("text=What the bot did not understand")
    cluster = page.locator("section.cluster").first
    assert "4 messages" in await cluster.locator("h2").inner_text()
    await cluster.locator("label", has_text="лампочка").locator("input").uncheck()
    await cluster.locator('input[name="intent"]').fill("router_red_light")
    await shot(page, tmp_path, "problems-clusters")
    await cluster.locator('button[type="submit"]').click()
    await page.locator(".flash", has_text="router_red_light: 3 examples added").wait_for()
    assert "made into router_red_light" in await page.locator("section.cluster").first.inner_text()
    assert dialogs == []
    await context.close()
