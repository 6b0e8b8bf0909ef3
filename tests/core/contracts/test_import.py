"""The CSV import's set-based write (staged rows, one upsert, reminders armed in one INSERT ... SELECT) keeps the
reminders exactly as a PUT of each contract would: armed once per offset, a fired one left fired, a moved end date
re-armed, a contract that is not active (or whose new dates are past) without pending ones; regions normalised."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.contracts import importer
from core.contracts import service as contracts
from core.contracts.models import Contract
from core.contracts.repository import REMINDER
from core.jobs.models import ScheduledTask, TaskState
from tests.core.contracts.test_reminders import SETTINGS, body, customer_with_ticket

NOW = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
HEADER = "number,customer,tariff,start_date,end_date,status,region\n"


async def run(sessionmaker: async_sessionmaker[AsyncSession], text: str) -> Any:
    async with sessionmaker() as s, s.begin():
        return await importer.import_csv(s, text, settings=SETTINGS, now=NOW, actor=None)


async def reminders(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, tuple[str, datetime, dict[str, Any]]]:
    async with sessionmaker() as s:
        rows = (await s.scalars(select(ScheduledTask).where(ScheduledTask.kind == REMINDER))).all()
        return {r.key: (str(r.state), r.due_at.astimezone(UTC), dict(r.payload)) for r in rows}


async def test_imported_reminders_are_those_a_put_arms(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna = await customer_with_ticket(sessionmaker)
    async with sessionmaker() as s, s.begin():
        await contracts.put(s, "PUT-1", body(anna), actor=None, via_key=None, settings=SETTINGS, now=NOW)
    by_put = {k.split(":", 2)[2]: v for k, v in (await reminders(sessionmaker)).items()}
    result = await run(sessionmaker, HEADER + f"CSV-1,{anna},Home 100,2026-03-01,2027-03-01,active, MSK/North \n")
    assert result.imported == 1 and result.created == 1
    async with sessionmaker() as s:
        row = (await s.scalars(select(Contract).where(Contract.number == "CSV-1"))).one()
    assert row.region == "msk/north"
    by_csv = {k.split(":", 2)[2]: v for k, v in (await reminders(sessionmaker)).items()
              if k.startswith(f"contract:{row.id}:")}
    assert sorted(by_csv) == ["1d", "30d", "7d"]
    for offset, (state, due, payload) in by_csv.items():
        assert (state, due) == by_put[offset][:2]
        assert payload == {**by_put[offset][2], "contract_id": row.id}


async def test_a_second_import_keeps_fired_reminders_and_follows_moved_dates_and_statuses(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna = await customer_with_ticket(sessionmaker)
    first = (HEADER + f"A-1,{anna},Home,2026-01-01,2027-03-01,active,\n"
             f"A-2,{anna},Home,2026-01-01,2027-03-01,active,\n"
             f"A-3,{anna},Home,2026-01-01,2027-03-01,active,\n"
             f"A-4,{anna},Home,2026-01-01,2027-01-15,terminating,\n")
    await run(sessionmaker, first)
    armed = await reminders(sessionmaker)
    assert len(armed) == 9  # A-4 is under termination
    async with sessionmaker() as s, s.begin():
        a1 = (await s.scalars(select(Contract.id).where(Contract.number == "A-1"))).one()
        a2 = (await s.scalars(select(Contract.id).where(Contract.number == "A-2"))).one()
        a3 = (await s.scalars(select(Contract.id).where(Contract.number == "A-3"))).one()
        await s.execute(update(ScheduledTask).where(ScheduledTask.key.in_(
            [f"contract:{a1}:30d", f"contract:{a2}:30d"])).values(state=TaskState.done, done_at=NOW))
    again = await run(sessionmaker, first)
    assert again.updated == 4 and await reminders(sessionmaker) == {
        **armed, f"contract:{a1}:30d": ("done", *armed[f"contract:{a1}:30d"][1:]),
        f"contract:{a2}:30d": ("done", *armed[f"contract:{a2}:30d"][1:])}
    moved = (HEADER + f"A-1,{anna},Home,2026-01-01,2027-06-01,active,\n"  # later end: all three again
             f"A-2,{anna},Home,2026-01-01,2027-03-01,terminating,\n"  # pending dropped, fired kept
             f"A-3,{anna},Home,2026-01-01,2027-01-05,active,\n")  # new dues: 30d and 7d past, 1d ahead
    await run(sessionmaker, moved)
    now = await reminders(sessionmaker)
    assert {k: v[0] for k, v in now.items() if k.startswith(f"contract:{a1}:")} == {
        f"contract:{a1}:30d": "pending", f"contract:{a1}:7d": "pending", f"contract:{a1}:1d": "pending"}
    assert all(v[2]["end_date"] == "2027-06-01" for k, v in now.items() if k.startswith(f"contract:{a1}:"))
    assert {k: v[0] for k, v in now.items() if k.startswith(f"contract:{a2}:")} == {f"contract:{a2}:30d": "done"}
    assert {k: (v[0], v[2]["end_date"]) for k, v in now.items() if k.startswith(f"contract:{a3}:")} == {
        f"contract:{a3}:1d": ("pending", "2027-01-05")}


async def test_a_bad_region_is_an_error_by_line(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna = await customer_with_ticket(sessionmaker)
    result = await run(sessionmaker, HEADER + f"R-1,{anna},Home,2026-01-01,2027-03-01,active,msk//north\n")
    assert result.error_count == 1 and result.errors[0].line == 2 and "bad region" in result.errors[0].error
