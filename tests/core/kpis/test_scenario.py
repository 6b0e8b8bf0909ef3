"""The KPI engine on a scripted two days with known timings: every field of the totals and of the day, channel and
agent groups asserted to its exact value, on SQLite and PostgreSQL; the tickets behind figures; business-hours
first response for a ticket under an SLA calendar."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.kpis.schemas import KPI_FIELDS
from tests.core.kpis.helpers import D1, D2, Scenario, at, drive_utcnow, scenario_app


async def play(s: Scenario) -> None:
    """Five appeals over two days (Moscow time):
    T1 rest 10:00 "hello": the bot answers; quiet 30 min -> resolved by the bot at 10:31 (contained).
    T2 telegram 10:05 internet down: escalated; agent A replies 10:15, resolves 10:45; CSAT 5 (telegram).
    T3 webchat 10:10 internet down: escalated; A replies 10:40, resolves 11:00; the customer writes again 11:30
       (reopened); B replies 11:40, resolves 12:10; CSAT 2 (webchat, low).
    T4 rest D1 17:50 complaint, under the business-hours SLA (Mon-Fri 09:00-18:00, first response 30 min,
       resolution 240 min): B replies D2 09:25 (35 business minutes: breached), resolves D2 10:00 (70 business
       minutes: met); CSAT 4 (rest).
    T5 telegram D2 11:00 "operator": handed to the queue, nobody answers yet (backlog).
    """
    admin = s.headers["admin"]
    r = await s.client.post("/admin/calendars", headers=admin, json={
        "name": "office", "time_zone": "Europe/Moscow",
        "weekly": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}})
    assert r.status_code == 201, r.text
    r = await s.client.post("/admin/sla-policies", headers=admin, json={
        "name": "complaints", "calendar_id": r.json()["id"], "intents": ["complaint"],
        "first_response_minutes": 30, "resolution_minutes": 240})
    assert r.status_code == 201, r.text

    s.to(at(D1, "10:00"))
    await s.customer_writes("t1", "rest", "hello")
    s.to(at(D1, "10:05"))
    await s.customer_writes("t2", "telegram", "my internet is down")
    s.to(at(D1, "10:10"))
    await s.customer_writes("t3", "webchat", "internet is down again")
    s.to(at(D1, "10:15"))
    await s.reply("a", "t2")
    s.to(at(D1, "10:31"))
    assert await s.bot_sweep() == 1
    s.to(at(D1, "10:40"))
    await s.reply("a", "t3")
    s.to(at(D1, "10:45"))
    await s.set_status("a", "t2", "resolved")
    s.to(at(D1, "11:00"))
    await s.set_status("a", "t3", "resolved")
    s.to(at(D1, "11:30"))
    await s.customer_writes("t3-again", "webchat", "internet is still down", ticket="t3")
    s.to(at(D1, "11:40"))
    await s.reply("b", "t3")
    s.to(at(D1, "12:10"))
    await s.set_status("b", "t3", "resolved")
    s.to(at(D1, "17:50"))
    await s.customer_writes("t4", "rest", "I have a complaint")
    s.to(at(D2, "09:25"))
    await s.run_due()  # the SLA breach alert of T4 fires at 09:20
    await s.reply("b", "t4")
    s.to(at(D2, "10:00"))
    await s.set_status("b", "t4", "resolved")
    s.to(at(D2, "11:00"))
    await s.customer_writes("t5", "telegram", "operator please")
    s.to(at(D2, "12:00"))
    await s.run_due()  # the surveys go out
    await s.rate("t2", 5, "telegram")
    await s.rate("t3", 2, "webchat")
    await s.rate("t4", 4, "rest")
    await s.fold_all()


def row(tickets: int, resolved: int, frt: tuple[float | None, float | None], res: tuple[float | None, float | None],
        fcr: float | None, containment: float, handoff: float, complaint: float, sla_fr: float | None,
        sla_res: float | None, csat_avg: float | None, csat_n: int, reopen: float | None, backlog: int
        ) -> dict[str, Any]:
    return {"tickets": tickets, "resolved": resolved, "first_response_median_s": frt[0],
            "first_response_p90_s": frt[1], "resolution_median_s": res[0], "resolution_p90_s": res[1],
            "fcr_rate": fcr, "containment_rate": containment, "handoff_rate": handoff, "complaint_rate": complaint,
            "sla_first_response_met_rate": sla_fr, "sla_resolution_met_rate": sla_res, "csat_avg": csat_avg,
            "csat_responses": csat_n, "reopen_rate": reopen, "backlog": backlog}


TOTALS = row(5, 4, (1800, 2100), (2400, 7200), 0.75, 0.2, 0.8, 0.2, 0.0, 1.0, 3.6667, 3, 0.25, 1)
BY_DAY = {
    D1.isoformat(): row(4, 4, (1800, 2100), (2400, 7200), 0.75, 0.25, 0.75, 0.25, 0.0, 1.0, 3.6667, 3, 0.25, 1),
    D2.isoformat(): row(1, 0, (None, None), (None, None), None, 0.0, 1.0, 0.0, None, None, None, 0, None, 1),
}
BY_CHANNEL = {
    "rest": row(2, 2, (2100, 2100), (1860, 4200), 1.0, 0.5, 0.5, 0.5, 0.0, 1.0, 4.0, 1, 0.0, 0),
    "telegram": row(2, 1, (600, 600), (2400, 2400), 1.0, 0.0, 1.0, 0.0, None, None, 5.0, 1, 0.0, 1),
    "webchat": row(1, 1, (1800, 1800), (7200, 7200), 0.0, 0.0, 1.0, 0.0, None, None, 2.0, 1, 1.0, 0),
}


def by_agent(ids: dict[str, int]) -> dict[str | None, dict[str, Any]]:
    return {
        str(ids["a"]): row(2, 2, (600, 1800), (2400, 7200), 0.5, 0.0, 1.0, 0.0, None, None, 3.5, 2, 0.5, 0),
        str(ids["b"]): row(1, 1, (2100, 2100), (4200, 4200), 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 4.0, 1, 0.0, 0),
        None: row(2, 1, (None, None), (1860, 1860), 1.0, 0.5, 0.5, 0.0, None, None, None, 0, 0.0, 1),
    }


def fields(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in KPI_FIELDS}


async def get(s: Scenario, path: str, **params: Any) -> Any:
    r = await s.client.get(path, headers=s.headers["sup"], params={"from": D1.isoformat(), "to": D2.isoformat(),
                                                                   **params})
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_kpi_field_of_a_scripted_two_days(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock(at(D1, "08:00"))
    drive_utcnow(monkeypatch, clock)
    async with scenario_app(db_url, clock, sessionmaker) as s:
        await play(s)
        t4 = await s.ticket("t4")
        assert t4.assignee_id == s.user_ids["b"] and t4.intent == "complaint"
        assert (await s.ticket("t3")).reopen_count == 1

        daily = await get(s, "/reports/kpis", group_by="day")
        assert daily["time_zone"] == "Europe/Moscow" and daily["as_of"] is not None
        assert fields(daily["totals"]) == TOTALS
        assert {g["key"]: fields(g) for g in daily["groups"]} == BY_DAY
        assert daily["totals"]["csat_distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
        assert daily["totals"]["csat_surveys_sent"] == 3 and daily["totals"]["csat_response_rate"] == 1.0

        channels = await get(s, "/reports/kpis", group_by="channel")
        assert fields(channels["totals"]) == TOTALS
        assert {g["key"]: fields(g) for g in channels["groups"]} == BY_CHANNEL

        agents = await get(s, "/reports/kpis", group_by="agent")
        assert fields(agents["totals"]) == TOTALS
        assert {g["key"]: fields(g) for g in agents["groups"]} == by_agent(s.user_ids)
        assert {g["key"]: g["label"] for g in agents["groups"]}[str(s.user_ids["a"])] == "a"

        for group_by in ("week", "month", "queue", "intent"):
            other = await get(s, "/reports/kpis", group_by=group_by)
            assert fields(other["totals"]) == TOTALS, group_by
            assert sum(g["tickets"] for g in other["groups"]) == 5

        # The tickets behind figures are exactly those the figures count.
        ids = s.tickets

        async def behind(metric: str, **params: Any) -> list[int]:
            page = await get(s, "/reports/kpis/tickets", metric=metric, **params)
            return [t["id"] for t in page["items"]]

        assert await behind("tickets") == sorted(ids[n] for n in ("t1", "t2", "t3", "t4", "t5"))
        assert await behind("resolved", group_by="channel", key="telegram") == [ids["t2"]]
        assert await behind("reopen") == [ids["t3"]]
        assert await behind("csat_low") == [ids["t3"]]
        assert await behind("contained") == [ids["t1"]]
        assert await behind("complaint") == [ids["t4"]]
        assert await behind("sla_first_response_breached") == [ids["t4"]]
        assert await behind("sla_resolution_met") == [ids["t4"]]
        assert await behind("not_fcr") == [ids["t3"]]
        assert await behind("backlog") == [ids["t5"]]
        assert await behind("backlog", group_by="day", key=D1.isoformat()) == [ids["t4"]]
        assert await behind("handoff", group_by="day", key=D2.isoformat()) == [ids["t5"]]
        assert await behind("tickets", group_by="agent", key="") == sorted([ids["t1"], ids["t5"]])
        assert await behind("first_response", group_by="agent", key=str(s.user_ids["a"])) == sorted(
            [ids["t2"], ids["t3"]])
        page = await get(s, "/reports/kpis/tickets", metric="tickets", limit=2)
        assert len(page["items"]) == 2 and page["next_after"] == page["items"][-1]["id"]
        rest = await get(s, "/reports/kpis/tickets", metric="tickets", limit=2, after=page["next_after"])
        last = await get(s, "/reports/kpis/tickets", metric="tickets", limit=2, after=rest["next_after"])
        assert [t["id"] for t in page["items"] + rest["items"] + last["items"]] == await behind("tickets")
        assert last["next_after"] is None
        t4_read = next(t for t in (await get(s, "/reports/kpis/tickets", metric="complaint"))["items"])
        # Business hours of the SLA calendar: 17:50-18:00 and 09:00-09:25, not the 15 h 35 min of wall clock.
        assert t4_read["first_response_s"] == 35 * 60 and t4_read["resolution_s"] == 70 * 60


def test_the_expected_rows_add_up() -> None:
    """The scenario's expectations are consistent with each other (the day groups make the totals' counts)."""
    assert sum(r["tickets"] for r in BY_DAY.values()) == TOTALS["tickets"]
    assert sum(r["tickets"] for r in BY_CHANNEL.values()) == TOTALS["tickets"]
    assert sum(r["csat_responses"] for r in BY_CHANNEL.values()) == TOTALS["csat_responses"]

