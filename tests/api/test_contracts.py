"""Contracts over the API: PUT by number (idempotent), GET, the customer's contracts, and the CSV import that
writes every row or none, reporting bad rows by line."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.contracts.models import Contract
from core.customers.models import Customer
from core.users.models import User

Auth = tuple[User, dict[str, str]]


async def customers(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with sessionmaker() as s, s.begin():
        rows = [Customer(name="Anna", email="anna@example.com", phone="+79120000001", language="ru"),
                Customer(name="Bob", email="bob@example.com", phone="+79120000002", language="en"),
                Customer(name="Gone", email="gone@example.com", erased_at=func.now())]
        s.add_all(rows)
        await s.flush()
        return rows[0].id, rows[1].id, rows[2].id


def contract(customer: dict[str, object], **fields: object) -> dict[str, object]:
    return {"customer": customer, "tariff": "Home 100", "services": ["internet", "tv"], "start_date": "2026-01-01",
            "end_date": "2027-01-01", "auto_renewal": True, **fields}


async def count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Contract)) or 0)


async def test_put_is_an_idempotent_upsert_and_the_customer_sees_their_contracts(
        app_client: httpx.AsyncClient, supervisor: Auth, agent: Auth,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna, bob, _ = await customers(sessionmaker)
    r = await app_client.put("/contracts/12345678", json=contract({"email": "anna@example.com"}),
                             headers=supervisor[1])
    assert r.status_code == 201, r.text
    assert r.json()["customer_id"] == anna and r.json()["status"] == "active"
    r = await app_client.put("/contracts/12345678", json=contract({"id": anna}), headers=supervisor[1])
    assert r.status_code == 200
    r = await app_client.put("/contracts/12345678", json=contract({"phone": "+79120000002"}, tariff="Max"),
                             headers=supervisor[1])
    assert r.status_code == 200 and r.json()["customer_id"] == bob and r.json()["tariff"] == "Max"
    assert await count(sessionmaker) == 1
    r = await app_client.get("/contracts/12345678", headers=agent[1])
    assert r.status_code == 200 and r.json()["services"] == ["internet", "tv"]
    r = await app_client.get(f"/customers/{bob}/contracts", headers=agent[1])
    assert [c["number"] for c in r.json()] == ["12345678"]
    assert (await app_client.get(f"/customers/{anna}/contracts", headers=agent[1])).json() == []
    assert (await app_client.get("/contracts/99999999", headers=agent[1])).status_code == 404
    assert (await app_client.put("/contracts/1", json=contract({"id": anna}), headers=agent[1])).status_code == 403


async def test_bad_contracts_are_refused_with_the_reason(app_client: httpx.AsyncClient, supervisor: Auth,
                                                         sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna, _, gone = await customers(sessionmaker)
    cases = [
        (contract({"id": anna}, end_date="2025-01-01"), 422),  # ends before it starts
        (contract({"id": anna}, start_date="2026-02-30"), 422),  # no such date
        (contract({"id": anna}, status="paused"), 422),
        (contract({"email": "nobody@example.com"}), 409),
        (contract({"id": 999999}), 404),
        (contract({"id": gone}), 409),
    ]
    for body, status in cases:
        r = await app_client.put("/contracts/55555555", json=body, headers=supervisor[1])
        assert r.status_code == status, (body, r.text)
    assert (await app_client.put("/contracts/bad number!", json=contract({"id": anna}),
                                 headers=supervisor[1])).status_code == 422
    assert await count(sessionmaker) == 0


HEADER = "number,customer,tariff,services,start_date,end_date,auto_renewal,status\n"


async def test_a_csv_import_writes_every_row(app_client: httpx.AsyncClient, admin: Auth,
                                             sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna, bob, _ = await customers(sessionmaker)
    key = (await app_client.post("/admin/api-keys", json={"name": "crm", "scopes": ["contracts:write"]},
                                 headers=admin[1])).json()["key"]
    body = (HEADER + f"10000001,{anna},Home,internet;tv,2026-01-01,2027-01-01,true,\n"
            "10000002,bob@example.com,Mobile,,01.02.2026,01.02.2027,нет,terminating\n"
            "10000003,+79120000002,Mobile,,2026-01-01,2026-06-01,0,expired\n")
    r = await app_client.post("/contracts/import", content=body.encode(), headers={"X-Api-Key": key,
                                                                                   "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 3, "created": 3, "updated": 0, "errors": [], "error_count": 0}
    r = await app_client.post("/contracts/import", content=body.encode(), headers={"X-Api-Key": key})
    assert r.json()["updated"] == 3 and await count(sessionmaker) == 3
    async with sessionmaker() as s:
        rows = {c.number: c for c in (await s.scalars(select(Contract))).all()}
    assert rows["10000002"].customer_id == bob and rows["10000002"].status == "terminating"
    assert rows["10000001"].services == ["internet", "tv"] and rows["10000001"].auto_renewal


async def test_a_csv_with_errors_is_reported_by_line_and_nothing_is_written(
        app_client: httpx.AsyncClient, supervisor: Auth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna, _, gone = await customers(sessionmaker)
    body = (HEADER + f"20000001,{anna},Home,,2026-01-01,2027-01-01,true,\n"
            f"20000002,{anna},Home,,2026-13-01,2027-01-01,true,\n"
            f"20000001,{anna},Home,,2026-01-01,2027-01-01,true,\n"
            "20000004,nobody@example.com,Home,,2026-01-01,2027-01-01,true,\n"
            f"20000005,{gone},Home,,2026-01-01,2027-01-01,true,\n"
            f"20000006,{anna},Home,,2026-01-01,2025-01-01,maybe,paused\n"
            f"20000007,{anna}\n")
    r = await app_client.post("/contracts/import", content=body.encode(), headers=supervisor[1])
    assert r.status_code == 422, r.text
    details = r.json()["details"]
    assert details["error_count"] == 6
    by_line = {e["line"]: e["error"] for e in details["errors"]}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert "bad start_date" in by_line[3] and "repeats line 2" in by_line[4]
    assert "unknown customer" in by_line[5] and "erased" in by_line[6]
    assert "end_date is before start_date" in by_line[7] and "auto_renewal" in by_line[7] and "status" in by_line[7]
    assert "fields where the header has" in by_line[8]
    assert await count(sessionmaker) == 0

    r = await app_client.post("/contracts/import", content=b"number,client,end\n1,2,3\n", headers=supervisor[1])
    assert r.status_code == 422
    error = r.json()["details"]["errors"][0]
    assert error["line"] == 1 and "unknown columns: client, end" in error["error"] and "missing columns" in \
        error["error"]
    r = await app_client.post("/contracts/import", content=b"\xff\xfe", headers=supervisor[1])
    assert r.status_code == 422 and r.json()["details"]["reason"] == "bad_file"


async def test_a_merge_moves_the_contracts_to_the_surviving_customer(
        app_client: httpx.AsyncClient, supervisor: Auth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna, bob, _ = await customers(sessionmaker)
    r = await app_client.put("/contracts/66666666", json=contract({"id": bob}), headers=supervisor[1])
    assert r.status_code == 201
    r = await app_client.post(f"/customers/{anna}/merge", json={"source_customer_id": bob}, headers=supervisor[1])
    assert r.status_code == 200, r.text
    r = await app_client.get(f"/customers/{anna}/contracts", headers=supervisor[1])
    assert [c["number"] for c in r.json()] == ["66666666"]
