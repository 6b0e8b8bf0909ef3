"""All contract queries, and the contract reminders' due tasks kept in step with the contracts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.schema import CreateTable, DropTable

from core.contracts.models import Contract, ContractStatus
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



# -- the CSV import: staged rows, then a few set-based statements ------------------------------------------------

_staging = MetaData()
# The file's rows, staged in the import's own transaction (PostgreSQL drops it at commit or rollback; SQLite's is
# dropped by the importer, and a temporary table is the connection's own either way).
STAGED = Table(
    "contracts_import", _staging,
    Column("number", String(64), primary_key=True), Column("customer_id", Integer), Column("tariff", String(200)),
    Column("services", Text), Column("start_date", Date), Column("end_date", Date), Column("auto_renewal", Boolean),
    Column("status", String(16)), Column("region", String(200)),
    prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
# The reminder due times of the file's (end date, offset) pairs, computed in Python (time zones): a few thousand.
DUES = Table(
    "contracts_import_dues", _staging,
    Column("end_date", Date, primary_key=True), Column("days", Integer, primary_key=True),
    Column("due_at", DateTime(timezone=True)), Column("end_text", String(10)),
    prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
STAGED_COLUMNS = ("number", "customer_id", "tariff", "services", "start_date", "end_date", "auto_renewal", "status",
                  "region")


async def stage(session: AsyncSession, rows: Sequence[tuple[Any, ...]], dues: Sequence[tuple[Any, ...]]) -> None:
    """The rows (STAGED_COLUMNS order, services as JSON text) and dues ((end, days, due_at, end iso)) into temporary
    tables: COPY on PostgreSQL, one executemany on SQLite."""
    for table in (STAGED, DUES):
        await session.execute(DropTable(table, if_exists=True))
        await session.execute(CreateTable(table))
    if session.get_bind().dialect.name == "postgresql":
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        if raw is None:
            raise RuntimeError("no driver connection to COPY on")
        await raw.copy_records_to_table(STAGED.name, records=rows, columns=list(STAGED_COLUMNS))
        await raw.copy_records_to_table(DUES.name, records=dues, columns=["end_date", "days", "due_at", "end_text"])
        await session.execute(text(f"ANALYZE {STAGED.name}"))
        return
    await session.execute(insert(STAGED), [dict(zip(STAGED_COLUMNS, r, strict=True)) for r in rows])
    await session.execute(insert(DUES), [dict(zip(("end_date", "days", "due_at", "end_text"), d, strict=True))
                                         for d in dues])


async def drop_staged(session: AsyncSession) -> None:
    for table in (STAGED, DUES):
        await session.execute(DropTable(table, if_exists=True))


async def staged_existing(session: AsyncSession) -> int:
    """How many staged numbers are contracts already (before the upsert)."""
    return int(await session.scalar(select(func.count()).select_from(STAGED.join(
        Contract.__table__, Contract.__table__.c.number == STAGED.c.number))) or 0)


async def upsert_staged(session: AsyncSession, now: datetime) -> None:
    """Every staged row into contracts in one INSERT ... SELECT ... ON CONFLICT (number) DO UPDATE."""
    services: Any = STAGED.c.services
    if session.get_bind().dialect.name == "postgresql":
        services = cast(STAGED.c.services, postgresql.JSONB)
    chosen = select(STAGED.c.number, STAGED.c.customer_id, STAGED.c.tariff, services, STAGED.c.start_date,
                    STAGED.c.end_date, STAGED.c.auto_renewal, STAGED.c.status, STAGED.c.region,
                    literal(now, DateTime(timezone=True)), literal(now, DateTime(timezone=True))
                    ).where(true())  # SQLite: an upsert's SELECT needs a WHERE (its parser's ambiguity with ON)
    stmt = _insert(session)(Contract.__table__).from_select(
        [*STAGED_COLUMNS, "created_at", "updated_at"], chosen)
    stmt = stmt.on_conflict_do_update(index_elements=[Contract.number],
                                      set_={c: getattr(stmt.excluded, c) for c in UPSERT_COLUMNS})
    await session.execute(stmt)


async def sync_staged_reminders(session: AsyncSession, offsets: Sequence[int], now: datetime) -> None:
    """The staged contracts' reminders in step with them (as core.contracts.service.sync_reminders does row by row):
    pending ones of a contract that is not active, or armed for another end date, dropped; then every future
    (contract, offset) armed in one INSERT ... SELECT, re-arming a task that fired or waits for another end date and
    leaving one armed (or fired) for this end date alone."""
    contracts = Contract.__table__
    tasks = ScheduledTask.__table__
    days = DUES.c.days
    key = literal("contract:") + cast(contracts.c.id, String) + literal(":") + cast(days, String) + literal("d")
    imported = (select(key.label("key"), contracts.c.status, DUES.c.end_text)
                .select_from(STAGED.join(contracts, contracts.c.number == STAGED.c.number)
                             .join(DUES, DUES.c.end_date == contracts.c.end_date)))
    if not offsets:
        return
    current = imported.subquery("current")
    armed = aliased(ScheduledTask)
    # The stale keys found once (the file's keys joined to their tasks by the unique (kind, key) index), then
    # deleted: a correlated EXISTS per pending task made SQLite walk the file's keys for each of them.
    stale = (select(current.c.key).join(armed, (armed.kind == REMINDER) & (armed.key == current.c.key))
             .where(armed.state == TaskState.pending, or_(
                 current.c.status != ContractStatus.active.value,
                 current.c.end_text != armed.payload["end_date"].as_string())))
    await session.execute(delete(ScheduledTask).where(ScheduledTask.kind == REMINDER,
                                                      ScheduledTask.key.in_(stale))
                          .execution_options(synchronize_session=False))
    postgres = session.get_bind().dialect.name == "postgresql"
    build = func.jsonb_build_object if postgres else func.json_object
    payload = build("contract_id", contracts.c.id, "days", days, "end_date", DUES.c.end_text)
    chosen = (select(literal(REMINDER), key, DUES.c.due_at, payload, literal(TaskState.pending.value), literal(0),
                     literal(now, DateTime(timezone=True)))
              .select_from(STAGED.join(contracts, contracts.c.number == STAGED.c.number)
                           .join(DUES, DUES.c.end_date == contracts.c.end_date))
              .where(contracts.c.status == ContractStatus.active.value, DUES.c.due_at > now))
    stmt = _insert(session)(tasks).from_select(
        ["kind", "key", "due_at", "payload", "state", "attempts", "created_at"], chosen)
    fresh_end = stmt.excluded.payload["end_date"].as_string()
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "key"],
        set_={"due_at": stmt.excluded.due_at, "payload": stmt.excluded.payload, "state": TaskState.pending.value,
              "attempts": 0, "claimed_by": None, "lease_until": None, "done_at": None, "last_error": None},
        where=ScheduledTask.payload["end_date"].as_string() != fresh_end)
    await session.execute(stmt)
