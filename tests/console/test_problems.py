"""Console → Problems: the top lists and alerts (RU/EN), the board's rising-problem alert, the clusters page and its
"make this an intent" form (admins only)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from core.db.base import utcnow
from core.problems import repository
from core.problems.config import ProblemsSettings
from core.problems.models import Dimension
from core.users.models import User
from tests.conftest import REST_HEADERS, make_settings, rest_message
from tests.console.conftest import People, form_of, login
from tests.core.problems.corpus import CORPUS
from tests.core.problems.helpers import kpis_up_to_date, tickets


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The app without the rising-problem job: these tests read the alerts they store themselves (a job tick on
    the real clock, late on a busy machine, would resolve them against an empty volume)."""
    return make_settings(db_url, problems=ProblemsSettings(rising_enabled=False))


async def raise_alert(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    now = utcnow()
    async with sessionmaker() as s, s.begin():
        await repository.raise_alert(s, {
            "dimension": Dimension.intent, "key": "internet_down", "window_minutes": 120, "raised_at": now,
            "evaluated_at": now, "raised_count": 12, "count": 12, "usual": 3.0, "ratio": 4.0, "peak_count": 12,
            "peak_ratio": 4.0})


async def speak(sessionmaker: async_sessionmaker[AsyncSession], user: User, language: str) -> None:
    async with sessionmaker() as s, s.begin():
        await s.execute(update(User).where(User.id == user.id).values(language=language))


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def test_the_board_shows_active_alerts_in_both_languages(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.supervisor.email)
    board = await client.get("/console/board")
    assert board.status_code == 200 and "rising-problems" not in board.text
    await raise_alert(sessionmaker)
    shown = text_of((await client.get("/console/board")).text)
    assert "1 rising problem" in shown
    assert "internet_down : 12 tickets in the last 2 h, 4.0× its usual 3.0" in shown
    await speak(sessionmaker, people.supervisor, "ru")
    shown = text_of((await client.get("/console/board")).text)
    assert "1 растущая проблема" in shown
    assert "internet_down : 12 обращений за последние 2 ч — в 4.0 раза больше обычного (3.0)" in shown


async def test_the_problems_page_lists_top_intents_reasons_and_alerts(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    now = utcnow()
    async with sessionmaker() as s, s.begin():
        await tickets(s, now - timedelta(minutes=5), 3, intent="internet_down", reason="needs_human")
        await tickets(s, now - timedelta(minutes=5), 1, intent="billing", reason="low_confidence")
        await tickets(s, now - timedelta(days=8), 1, intent="internet_down")
    await kpis_up_to_date(sessionmaker)
    await raise_alert(sessionmaker)

    await login(client, people.agent.email)
    assert (await client.get("/console/problems")).status_code == 403
    client.cookies.clear()
    await login(client, people.supervisor.email)
    page = await client.get("/console/problems")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert 'data-dimension="intent"' in page.text and 'data-dimension="escalation_reason"' in page.text
    assert re.search(r'<tr data-key="internet_down">.*?<td class="num">3</td>.*?75\.0 %', page.text, re.S)
    assert "The topic needs a person (no bot answer)" in shown and "The bot was not sure what was asked" in shown
    assert "internet_down : 12 tickets in the last 2 h" in shown and "<svg" in page.text
    await speak(sessionmaker, people.supervisor, "ru")
    shown = text_of((await client.get("/console/problems")).text)
    assert "Частые темы обращений" in shown and "Тема требует оператора (у бота нет ответа)" in shown
    bad = await client.get("/console/problems", params={"date_from": "2026-03-09", "date_to": "2026-03-01"})
    assert bad.status_code == 200 and "from must not be after to" in bad.text


async def test_an_admin_makes_a_cluster_an_intent_from_the_page(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    for topic, texts in CORPUS.items():
        for i, text in enumerate(texts):
            r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message(f"{topic}-{i}", text, sender=f"{topic}-{i}"))
            assert r.status_code == 201
    await login(client, people.supervisor.email)
    page = await client.get("/console/problems/clusters")
    assert page.status_code == 200 and "make-intent" not in page.text  # supervisors read only
    assert "роутер мигает красным светом что делать" in page.text

    client.cookies.clear()
    await login(client, people.admin.email)
    page = await client.get("/console/problems/clusters")
    key = re.search(r'data-cluster="(\d+)"', page.text)
    assert key
    action, fields = form_of(page.text, f"make-intent-{key.group(1)}")
    picked = re.findall(rf'id="make-intent-{key.group(1)}".*?</form>', page.text, re.S)[0]
    ids = re.findall(r'name="example_ids" value="(\d+)" checked', picked)
    assert len(ids) == 4
    data = {**fields, "intent": "router_red_light", "example_ids": ids[:3]}
    refused = await client.post(action, data={**data, "intent": "Router Red"})
    assert refused.status_code == 303
    after = await client.get(refused.headers["location"])
    assert "Not saved: an intent name is 2-64 characters" in after.text
    empty = await client.post(action, data={**data, "example_ids": []})
    assert "choose at least one text" in (await client.get(empty.headers["location"])).text

    made = await client.post(action, data=data)
    assert made.status_code == 303 and made.headers["location"].startswith("/console/problems/clusters?date_from=")
    after = await client.get(made.headers["location"])
    assert "router_red_light: 3 examples added; train the model to use them." in after.text
    assert 'class="badge ok cluster-handled"' in after.text and "made into router_red_light" in after.text
    intent = await client.get("/console/admin/intents/router_red_light")
    assert intent.status_code == 200
    assert sum(text in intent.text for text in CORPUS["router_ru"]) == 3
