"""KPI reports through the API: roles, bad input with reasons, the CSV and XLSX files, the OpenAPI description."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.kpis.fold import KpiFold
from core.kpis.schemas import KPI_FIELDS
from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message

Auth = tuple[Any, dict[str, str]]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def folded(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], *texts: str) -> None:
    for n, text in enumerate(texts):
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message(f"kpi-{n}", text, f"kpi-customer-{n}"))
        assert r.status_code in (200, 201), r.text
    fold = KpiFold(sessionmaker, time_zone="Europe/Moscow")
    while await fold.run_once():
        pass


async def test_supervisors_and_admins_read_reports_agents_do_not(
        app_client: httpx.AsyncClient, agent: Auth, supervisor: Auth, admin: Auth) -> None:
    params = {"from": today(), "to": today()}
    for path in ("/reports/kpis", "/reports/kpis/tickets"):
        extra = {"metric": "tickets"} if path.endswith("tickets") else {}
        assert (await app_client.get(path, params={**params, **extra})).status_code == 401
        r = await app_client.get(path, params={**params, **extra}, headers=agent[1])
        assert r.status_code == 403 and "supervisor" in r.json()["message"]
        for who in (supervisor, admin):
            assert (await app_client.get(path, params={**params, **extra}, headers=who[1])).status_code == 200


@pytest.mark.parametrize(("params", "reason"), [
    ({"from": "2026-02-30", "to": "2026-03-01"}, "query.from"),
    ({"from": "yesterday", "to": "2026-03-01"}, "query.from"),
    ({"to": "2026-03-01"}, "query.from"),
    ({"from": "2026-03-02", "to": "2026-03-01"}, "from is after to"),
    ({"from": "2024-01-01", "to": "2026-03-01"}, "at most 366 are reported"),
    ({"from": "9999-12-31", "to": "9999-12-31"}, "from must be between 2000-01-01 and 2099-12-31"),
    ({"from": "2026-03-01", "to": "2026-03-01", "group_by": "year"}, "query.group_by"),
    ({"from": "2026-03-01", "to": "2026-03-01", "format": "pdf"}, "query.format"),
])
async def test_bad_report_input_is_a_422_with_the_reason(
        app_client: httpx.AsyncClient, supervisor: Auth, params: dict[str, str], reason: str) -> None:
    r = await app_client.get("/reports/kpis", params=params, headers=supervisor[1])
    assert r.status_code == 422
    assert reason in r.text


@pytest.mark.parametrize(("params", "reason"), [
    ({"metric": "happiness"}, "query.metric"),
    ({"metric": "tickets", "group_by": "week", "key": "2026-03-03"}, "is not a week of the range"),
    ({"metric": "tickets", "group_by": "day", "key": "monday"}, "is not a date"),
    ({"metric": "tickets", "group_by": "queue", "key": "nowhere"}, "no queue 'nowhere'"),
    ({"metric": "tickets", "group_by": "agent", "key": "bob"}, "an agent key is a user id"),
    ({"metric": "tickets", "limit": "0"}, "query.limit"),
    ({"metric": "tickets", "after": "-1"}, "query.after"),
])
async def test_bad_drill_down_input_is_a_422_with_the_reason(
        app_client: httpx.AsyncClient, supervisor: Auth, params: dict[str, str], reason: str) -> None:
    r = await app_client.get("/reports/kpis/tickets", headers=supervisor[1],
                             params={"from": "2026-03-01", "to": "2026-03-31", **params})
    assert r.status_code == 422, r.text
    assert reason in r.text


async def test_csv_and_xlsx_hold_the_report_with_headers_in_the_callers_language(
        app_client: httpx.AsyncClient, supervisor: Auth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await folded(app_client, sessionmaker, "my internet is down", "hello", "I have a complaint")
    params = {"from": (datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
              "to": (datetime.now(UTC).date() + timedelta(days=1)).isoformat(), "group_by": "channel"}
    report = (await app_client.get("/reports/kpis", params=params, headers=supervisor[1])).json()
    assert report["totals"]["tickets"] == 3 and [g["key"] for g in report["groups"]] == ["rest"]

    r = await app_client.get("/reports/kpis", params={**params, "format": "csv"}, headers=supervisor[1])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="kpi_' in r.headers["content-disposition"]
    assert r.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0][:3] == ["Group", "Tickets", "Resolved"] and len(lines[0]) == 1 + len(KPI_FIELDS) + 2 + 5
    assert lines[1][:2] == ["rest", "3"] and lines[2][:2] == ["Total", "3"]
    handoff = lines[0].index("Hand-over rate")
    assert float(lines[2][handoff]) == report["totals"]["handoff_rate"]

    async with sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == supervisor[0].id).values(language="ru"))
    r = await app_client.get("/reports/kpis", params={**params, "format": "xlsx"}, headers=supervisor[1])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    assert sheet is not None
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][:3] == ["Группа", "Обращения", "Решено"]
    assert rows[1][:3] == ["rest", 3, report["groups"][0]["resolved"]]
    assert rows[2][0] == "Итого" and rows[2][1] == 3
    complaint = rows[0].index("Доля жалоб")
    assert rows[2][complaint] == report["totals"]["complaint_rate"]


async def test_the_openapi_document_defines_every_figure_and_the_422(app_client: httpx.AsyncClient) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    route = spec["paths"]["/reports/kpis"]["get"]
    assert "422" in route["responses"] and "403" in route["responses"]
    assert "Europe/Moscow" in route["description"] and "fcr_rate" in route["description"]
    row = spec["components"]["schemas"]["KpiRow"]["properties"]
    for name in KPI_FIELDS:
        assert row[name].get("description"), name
    assert "422" in spec["paths"]["/reports/kpis/tickets"]["get"]["responses"]
