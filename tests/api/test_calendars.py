"""Calendars through the REST API: the shipped ones, admin CRUD, reasons for bad input, roles."""

from __future__ import annotations

from typing import Any

import httpx

from core.users.models import User

OFFICE: dict[str, Any] = {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"],
                          "thu": ["09:00-18:00"], "fri": ["09:00-17:00"]}


async def test_the_shipped_calendars_are_there(app_client: httpx.AsyncClient,
                                               admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    r = await app_client.get("/admin/calendars", headers=h)
    assert r.status_code == 200, r.text
    by_name = {c["name"]: c for c in r.json()}
    assert set(by_name) == {"24/7", "Russia, office hours (Moscow)"}
    assert by_name["24/7"]["weekly"]["sun"] == ["00:00-24:00"]
    russia = (await app_client.get(f"/admin/calendars/{by_name['Russia, office hours (Moscow)']['id']}",
                                   headers=h)).json()
    assert russia["time_zone"] == "Europe/Moscow" and russia["weekly"]["sat"] == []
    days = {e["day"]: e["hours"] for e in russia["exceptions"]}
    assert days["2026-01-09"] == [] and days["2026-04-30"] == ["09:00-17:00"] and days["2026-12-31"] == []


async def test_an_admin_creates_changes_and_deletes_a_calendar(app_client: httpx.AsyncClient,
                                                               admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    body = {"name": "Billing", "time_zone": "Asia/Novosibirsk", "weekly": OFFICE,
            "exceptions": [{"day": "2026-06-13", "hours": ["10:00-14:00"], "note": "Working Saturday"}]}
    r = await app_client.post("/admin/calendars", headers=h, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["exceptions"] == [{"day": "2026-06-13", "hours": ["10:00-14:00"], "note": "Working Saturday"}]
    r = await app_client.post("/admin/calendars", headers=h, json=body)
    assert r.status_code == 409 and "already exists" in r.json()["message"]

    r = await app_client.patch(f"/admin/calendars/{created['id']}", headers=h,
                               json={"weekly": {**OFFICE, "sat": ["10:00-14:00"]}, "exceptions": []})
    assert r.status_code == 200, r.text
    assert r.json()["weekly"]["sat"] == ["10:00-14:00"] and r.json()["exceptions"] == []
    assert r.json()["name"] == "Billing" and r.json()["time_zone"] == "Asia/Novosibirsk"

    r = await app_client.delete(f"/admin/calendars/{created['id']}", headers=h)
    assert r.status_code == 204
    assert (await app_client.get(f"/admin/calendars/{created['id']}", headers=h)).status_code == 404
    assert (await app_client.delete(f"/admin/calendars/{created['id']}", headers=h)).status_code == 404


async def test_bad_calendars_get_a_422_with_the_reason(app_client: httpx.AsyncClient,
                                                       admin: tuple[User, dict[str, str]]) -> None:
    h = admin[1]
    base = {"name": "Bad", "time_zone": "Europe/Berlin", "weekly": OFFICE}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"time_zone": "Europe/Atlantis"}, "unknown time zone"),
        ({"weekly": {"mon": ["09:00-13:00", "12:30-18:00"]}}, "overlap"),
        ({"weekly": {"mon": ["18:00-09:00"]}}, "ends before it starts"),
        ({"weekly": {"mon": ["9-18"]}}, "weekly"),
        ({"exceptions": [{"day": "2026-02-30"}]}, "day"),
        ({"exceptions": [{"day": "not a date"}]}, "day"),
        ({"exceptions": [{"day": "2026-03-09"}, {"day": "2026-03-09"}]}, "listed twice"),
    ]
    for change, reason in cases:
        r = await app_client.post("/admin/calendars", headers=h, json={**base, **change})
        assert r.status_code == 422, (change, r.text)
        assert reason in r.text, (change, r.text)
    r = await app_client.get("/admin/calendars", headers=h)
    assert "Bad" not in {c["name"] for c in r.json()}


async def test_only_admins_change_calendars(app_client: httpx.AsyncClient, supervisor: tuple[User, dict[str, str]],
                                            agent: tuple[User, dict[str, str]]) -> None:
    body = {"name": "Night", "time_zone": "UTC", "weekly": {"mon": ["00:00-06:00"]}}
    assert (await app_client.get("/admin/calendars", headers=supervisor[1])).status_code == 200
    assert (await app_client.post("/admin/calendars", headers=supervisor[1], json=body)).status_code == 403
    assert (await app_client.get("/admin/calendars", headers=agent[1])).status_code == 403
    assert (await app_client.get("/admin/calendars")).status_code == 401
