"""All contract queries, and the contract reminders' due tasks kept in step with the contracts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.contracts.models import Contract
from core.customers.models import Customer
from core.jobs.models import ScheduledTask, TaskState

REMINDER = "contract.reminder"
IN_CHUNK = 5000  # ids or keys per IN (...) list: well under both databases' parameter limits


def reminder_key(contract_id: int, days: int) -> str:
    return f"contract:{contract_id}:{days}d"


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def get_by_number(session: AsyncSession, number: str, *, lock: bool = False) -> Contract | None:
    stmt = select(Contract).where(Contract.number == number)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def get(session: AsyncSession, contract_id: int) -> Contract | None:
    return await session.get(Contract, contract_id)


async def for_customer(session: AsyncSession, customer_id: int, limit: int = 200) -> Sequence[Contract]:
    """A customer's contracts, the latest ending first."""
    stmt = (select(Contract).where(Contract.customer_id == customer_id)
            .order_by(Contract.end_date.desc(), Contract.id.desc()).limit(limit))
    return (await session.scalars(stmt)).all()


async def move_to_customer(session: AsyncSession, source_id: int, target_id: int) -> None:
    await session.execute(update(Contract).where(Contract.customer_id == source_id).values(customer_id=target_id))


async def customers_by(session: AsyncSession, *, ids: Collection[int] = (), emails: Collection[str] = (),
                       phones: Collection[str] = ()) -> list[tuple[int, str | None, str | None, int | None, bool]]:
    """(id, email, phone, merged_into_id, erased) of the customers with these ids, emails or phones."""
    out: list[tuple[int, str | None, str | None, int | None, bool]] = []
    cols = (Customer.id, Customer.email, Customer.phone, Customer.merged_into_id, Customer.erased_at)
    for column, values in ((Customer.id, list(ids)), (Customer.email, list(emails)), (Customer.phone, list(phones))):
        for i in range(0, len(values), IN_CHUNK):
            rows = await session.execute(select(*cols).where(column.in_(values[i:i + IN_CHUNK]))
                                         .order_by(Customer.id))
            out.extend((r[0], r[1], r[2], r[3], r[4] is not None) for r in rows)
    return out


async def existing_numbers(session: AsyncSession, numbers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(numbers), IN_CHUNK):
        found.update((await session.scalars(select(Contract.number).where(
            Contract.number.in_(numbers[i:i + IN_CHUNK])))).all())
    return found


UPSERT_COLUMNS = ("customer_id", "tariff", "services", "start_date", "end_date", "auto_renewal", "status",
                  "region", "updated_at")


async def upsert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[tuple[int, date, str]]:
    """Insert or update contracts by number; (id, end_date, status) of each, in no set order.

    One statement compiled once and run over every row (executemany): a multi-row VALUES list is compiled anew
    for each chunk, which cost more than the database's work on a 100,000-row import.
    """
    insert = _insert(session)
    stmt = insert(Contract.__table__)  # Core, not the ORM's bulk path: a third of the time on 100,000 rows
    stmt = stmt.on_conflict_do_update(index_elements=[Contract.number],
                                      set_={c: getattr(stmt.excluded, c) for c in UPSERT_COLUMNS})
    await session.execute(stmt, list(rows))
    numbers = [r["number"] for r in rows]
    out: list[tuple[int, date, str]] = []
    for i in range(0, len(numbers), IN_CHUNK):
        result = await session.execute(select(Contract.id, Contract.end_date, Contract.status)
                                       .where(Contract.number.in_(numbers[i:i + IN_CHUNK])))
        out.extend((r[0], r[1], str(r[2])) for r in result)
    return out


async def reminder_states(session: AsyncSession, keys: Sequence[str]) -> dict[str, tuple[TaskState, Any]]:
    """key -> (state, the end date it was armed for) of the reminder tasks that exist among `keys`."""
    out: dict[str, tuple[TaskState, Any]] = {}
    for i in range(0, len(keys), IN_CHUNK):
        rows = await session.execute(select(ScheduledTask.key, ScheduledTask.state, ScheduledTask.payload).where(
            ScheduledTask.kind == REMINDER, ScheduledTask.key.in_(keys[i:i + IN_CHUNK])))
        out.update({k: (s, (p or {}).get("end_date")) for k, s, p in rows})
    return out


async def insert_reminders(session: AsyncSession, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    if not rows:
        return
    insert = _insert(session)
    values = [{"kind": REMINDER, "state": TaskState.pending, "attempts": 0, "created_at": now, **r} for r in rows]
    await session.execute(insert(ScheduledTask.__table__).on_conflict_do_nothing(index_elements=["kind", "key"]),
                          values)


async def rearm_reminders(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Move existing reminder tasks to a new due time and end date (the contract's end moved), pending again."""
    for r in rows:
        await session.execute(update(ScheduledTask).where(ScheduledTask.kind == REMINDER, ScheduledTask.key == r["key"])
                              .values(due_at=r["due_at"], payload=r["payload"], state=TaskState.pending, attempts=0,
                                      claimed_by=None, lease_until=None, done_at=None, last_error=None)
                              .execution_options(synchronize_session=False))


async def drop_pending_reminders(session: AsyncSession, keys: Sequence[str]) -> None:
    """Pending reminders that must not fire (the contract is under termination, or the offset is gone)."""
    for i in range(0, len(keys), IN_CHUNK):
        await session.execute(delete(ScheduledTask).where(
            ScheduledTask.kind == REMINDER, ScheduledTask.state == TaskState.pending,
            ScheduledTask.key.in_(keys[i:i + IN_CHUNK])).execution_options(synchronize_session=False))

