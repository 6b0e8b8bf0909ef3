"""Issue 18, scope 1 in a real browser: an admin annotates an example's entities in Rasa markup and edits the
answer's variants, at 1440 px in English and on a 390 px phone in Russian, without the page overflowing.

The database does not matter here (the HTTP tests cover both), so it runs on SQLite only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.nlu_admin import service as nlu_admin
from core.nlu_admin.models import NluExample
from core.users.models import User
from tests.console.conftest import LiveServer, People
from tests.console.test_working_day_browser import DESKTOP, PHONE, overflow, sign_in
from tests.support.browser import needs_chromium, shot

MARKUP = 'fly from [Moscow](city) to [Piter]{"entity": "city", "value": "Saint Petersburg"}'


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_admin_annotates_an_example_and_edits_answer_variants(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path) -> None:
    async with sessionmaker() as s, s.begin():
        await nlu_admin.create_intent(s, "book_flight", "", None)
        example = await nlu_admin.add_example(s, "book_flight", "fly from Moscow to Piter", None)
        await nlu_admin.set_responses(s, "book_flight", {"en": "Where to?", "ru": "Куда летим?"}, None)
    url = "/console/admin/intents/book_flight"

    context = await browser.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-US")
    page = await context.new_page()
    await sign_in(page, "admin@test.example")
    await page.goto(url)
    row = page.locator(f'tr[data-example="{example.id}"]')
    await row.locator("details.annotate summary").click()
    await page.fill(f"#markup-text-{example.id}", MARKUP)
    await row.locator('button[type="submit"]', has_text="Save").click()
    await page.wait_for_selector(".flash >> text=Saved: 2 entity annotations.")
    assert await row.locator("mark.entity").count() == 2
    assert await row.locator("mark.entity").nth(1).get_attribute("title") == "city value=Saint Petersburg"
    assert await page.input_value(f"#markup-text-{example.id}") == MARKUP

    await page.fill("#new-variant-en", "Which city are you flying to?")
    await page.locator("#add-variant-en button").click()
    await page.wait_for_selector('li[data-variant="en-1"]')
    await page.locator('#variant-en-1 button[value="up"]').click()
    await page.wait_for_selector(".flash >> text=Saved.")
    assert await page.input_value("#variant-text-en-0") == "Which city are you flying to?"
    assert await page.input_value("#variant-text-en-1") == "Where to?"
    assert await overflow(page) <= 0
    await page.locator("#variants-en").scroll_into_view_if_needed()
    await shot(page, tmp_path, "intent-variants-en")
    await context.close()

    async with sessionmaker() as s, s.begin():
        await s.execute(update(User).where(User.id == people.admin.id).values(language="ru"))
        stored = await s.get(NluExample, example.id)
        assert stored is not None and len(stored.entities or []) == 2
    context = await browser.new_context(base_url=live_server.url, viewport=PHONE, locale="ru-RU",
                                        is_mobile=True, has_touch=True)
    page = await context.new_page()
    await sign_in(page, "admin@test.example")
    await page.goto(url)
    row = page.locator(f'tr[data-example="{example.id}"]')
    await row.locator("summary", has_text="Изменить сущности").click()
    await page.fill(f"#markup-text-{example.id}", "fly from [Moscow](city to Piter")
    await row.locator('button[type="submit"]', has_text="Сохранить").click()
    await page.wait_for_selector(".flash-error >> text=Разметка не закрыта")
    assert await row.locator("mark.entity").count() == 2  # nothing changed
    await page.locator('#variant-en-1 button[value="delete"]').click()
    await page.wait_for_selector(".flash >> text=Сохранено.")
    assert await page.locator('li[data-variant^="en-"]').count() == 1
    assert await page.locator('#variant-en-0 button[value="delete"]').count() == 0  # the last one stays
    assert await overflow(page) <= 0
    await page.locator("#variants-ru").scroll_into_view_if_needed()
    await shot(page, tmp_path, "intent-variants-ru-phone")
    await page.goto("/console/admin/intents-data")
    await page.fill("#add-regex-name", "zip")
    await page.fill("#add-regex-value", r"\d{6}")
    await page.locator("#add-regex button").click()
    await page.wait_for_selector('tr[data-regex="zip"]')
    assert await overflow(page) <= 0
    await context.close()


async def boxes_overlap(page: Any, first: str, second: str) -> bool:
    """Whether the boxes the two selectors' elements take on the page intersect."""
    a, b = await page.locator(first).bounding_box(), await page.locator(second).bounding_box()
    assert a is not None and b is not None, (first, second)
    return bool(a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
                and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


async def editors_of(page: Any, text: str) -> int:
    """How many text fields of the page hold `text` (each one a place to edit it)."""
    return int(await page.evaluate(
        "t => [...document.querySelectorAll('textarea, input[type=text]')].filter(e => e.value === t).length", text))


async def forms_overlapping(page: Any, scope: str) -> list[tuple[str, str]]:
    """The pairs of visible forms inside `scope` whose boxes on the page intersect."""
    forms = page.locator(f"{scope} form")
    boxes = [(await forms.nth(i).get_attribute("id") or str(i), await forms.nth(i).bounding_box())
             for i in range(await forms.count())]
    shown = [(name, b) for name, b in boxes if b is not None and b["width"] and b["height"]]
    return [(a, b) for n, (a, x) in enumerate(shown) for b, y in shown[n + 1:]
            if x["x"] < y["x"] + y["width"] and y["x"] < x["x"] + x["width"]
            and x["y"] < y["y"] + y["height"] and y["y"] < x["y"] + x["height"]]


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1440px", "390px"])
async def test_each_answer_is_edited_in_one_place_and_no_form_overlaps(
        browser: Any, live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path, viewport: dict[str, int]) -> None:
    """The answers form used to show each language's first answer next to variant 1 of the same text (two forms,
    one value, the later save silently winning): an existing answer is now edited as variant 1 only, the answers
    form creates the missing ones, and a button removes one."""
    async with sessionmaker() as s, s.begin():
        await nlu_admin.create_intent(s, "book_flight", "", None)
        await nlu_admin.set_responses(s, "book_flight", {"ru": "Куда летим?"}, None)
    context = await browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-US",
                                        is_mobile=viewport == PHONE, has_touch=viewport == PHONE)
    page = await context.new_page()

    async def confirm(dialog: Any) -> None:  # removing an answer asks first; the admin agrees
        await dialog.accept()

    page.on("dialog", confirm)
    await sign_in(page, "admin@test.example")
    await page.goto("/console/admin/intents/book_flight")
    answers = "section:has(#variants-ru)"
    assert await editors_of(page, "Куда летим?") == 1
    assert await page.locator("#answer-ru").count() == 0 and await page.locator("#answer-en").count() == 1
    assert await forms_overlapping(page, answers) == []
    assert await overflow(page) <= 0
    await page.locator("#answers").scroll_into_view_if_needed()
    await shot(page, tmp_path, f"intent-answers-{viewport['width']}")

    await page.fill("#answer-en", "Where to?")
    await page.click("#save-answers")
    await page.wait_for_selector('li[data-variant="en-0"]')
    assert await page.locator("#answers").count() == 0  # both languages answered: nothing left to create
    assert await editors_of(page, "Where to?") == 1 and await editors_of(page, "Куда летим?") == 1
    assert await forms_overlapping(page, answers) == []
    assert await overflow(page) <= 0

    await page.locator("#remove-answer-ru button").click()
    await page.wait_for_selector("#answer-ru")
    assert await page.locator("#variants-ru").count() == 0 and await editors_of(page, "Куда летим?") == 0
    assert await page.input_value("#variant-text-en-0") == "Where to?"  # the other language kept
    assert await forms_overlapping(page, answers) == []
    await context.close()
