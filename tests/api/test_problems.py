"""The typical-problem API: top lists and alerts for supervisors and admins (agents 403), bad input 422 with a reason,
labels in the caller's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from core.problems import repository
from core.problems.config import ProblemsSettings
from core.problems.models import Dimension
from core.users.models import User
from tests.conftest import make_settings
from tests.core.problems.helpers import kpis_up_to_date, tickets

Auth = tuple[User, dict[str, str]]
MAR_2 = datetime(2026, 3, 1, 21, 0, tzinfo=UTC)  # 2 March 00:00 in Moscow, the reports' default time zone


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The app without the rising-problem job: these tests read the alerts they store themselves (a job tick on
    the real clock, late on a busy machine, would resolve them against an empty volume)."""
    return make_settings(db_url, problems=ProblemsSettings(rising_enabled=False))


async def test_top_lists_by_role_with_labels_and_reasons(app_client: httpx.AsyncClient, supervisor: Auth,
                                                         agent: Auth, admin: Auth,
                                                         sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        await tickets(s, MAR_2 + timedelta(hours=5), 3, intent="internet_down", reason="needs_human")
        await tickets(s, MAR_2 + timedelta(hours=6), 1, reason="low_confidence")
        await tickets(s, MAR_2 - timedelta(hours=6), 1, intent="internet_down", reason="handoff")
    await kpis_up_to_date(sessionmaker)
    params = {"from": "2026-03-02", "to": "2026-03-08"}
    r = await app_client.get("/reports/problems/top", params=params, headers=supervisor[1])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["previous_total"], body["time_zone"]) == (4, 1, "Europe/Moscow")
    assert [(i["key"], i["count"], i["previous"], i["change"], i["change_pct"]) for i in body["items"]] == [
        ("internet_down", 3, 1, 2, 200.0), (None, 1, 0, 1, None)]
    r = await app_client.get("/reports/problems/top", params={**params, "dimension": "escalation_reason"},
                             headers=admin[1])
    assert [(i["key"], i["label"], i["count"]) for i in r.json()["items"]] == [
        ("needs_human", "The topic needs a person (no bot answer)", 3),
        ("low_confidence", "The bot was not sure what was asked", 1)]
    async with sessionmaker() as s, s.begin():
        await s.execute(update(User).where(User.id == admin[0].id).values(language="ru"))
    r = await app_client.get("/reports/problems/top", params={**params, "dimension": "escalation_reason"},
                             headers=admin[1])
    assert r.json()["items"][1]["label"] == "Бот не уверен, о чём вопрос"

    assert (await app_client.get("/reports/problems/top", params=params, headers=agent[1])).status_code == 403
    assert (await app_client.get("/reports/problems/top", params=params)).status_code == 401
    for bad, reason in [({"from": "2026-03-09", "to": "2026-03-02"}, "from must not be after to"),
                        ({"from": "2024-01-01", "to": "2026-03-02"}, "366"),
                        ({"from": "2026-13-01", "to": "2026-03-02"}, "date"),
                        ({"from": "9999-12-30", "to": "9999-12-31"}, "between 2000-01-01 and 2099-12-31"),
                        ({**params, "dimension": "queue"}, "intent"),
                        ({**params, "limit": "0"}, "greater than or equal"),
                        ({"to": "2026-03-02"}, "from")]:
        r = await app_client.get("/reports/problems/top", params=bad, headers=supervisor[1])
        assert r.status_code == 422 and reason in r.text, (bad, r.text)


async def test_alerts_active_and_history_pages(app_client: httpx.AsyncClient, supervisor: Auth, agent: Auth,
                                               sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    async with sessionmaker() as s, s.begin():
        ids = []
        for key in ("internet_down", "tv_down", "telegram"):
            alert = await repository.raise_alert(s, {
                "dimension": Dimension.channel if key == "telegram" else Dimension.intent, "key": key,
                "window_minutes": 120, "raised_at": now, "evaluated_at": now, "raised_count": 12, "count": 12,
                "usual": 3.0, "ratio": 4.0, "peak_count": 12, "peak_ratio": 4.0})
            assert alert is not None
            ids.append(alert.id)
        # The same episode cannot be raised twice.
        assert await repository.raise_alert(s, {
            "dimension": Dimension.intent, "key": "internet_down", "window_minutes": 120, "raised_at": now,
            "evaluated_at": now, "raised_count": 1, "count": 1, "usual": 0.0, "ratio": 1.0, "peak_count": 1,
            "peak_ratio": 1.0}) is None
        await repository.resolve_alert(s, ids[1], now + timedelta(hours=1))
    r = await app_client.get("/reports/problems/alerts", params={"active": "true"}, headers=supervisor[1])
    assert [(a["key"], a["dimension"], a["active"]) for a in r.json()["items"]] == [
        ("internet_down", "intent", True), ("telegram", "channel", True)]
    page = (await app_client.get("/reports/problems/alerts", params={"limit": 2}, headers=supervisor[1])).json()
    assert [a["id"] for a in page["items"]] == [ids[2], ids[1]] and page["next_before"] == ids[1]
    assert page["items"][1]["resolved_at"].startswith("2026-03-02T13:00")
    rest = (await app_client.get("/reports/problems/alerts", params={"limit": 2, "before": ids[1]},
                                 headers=supervisor[1])).json()
    assert [a["id"] for a in rest["items"]] == [ids[0]] and rest["next_before"] is None
    assert (await app_client.get("/reports/problems/alerts", headers=agent[1])).status_code == 403
