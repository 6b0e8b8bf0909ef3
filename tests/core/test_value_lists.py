"""`IN (...)` lists in few shapes: the ingest's lookups prepare one statement per power of two, not per length."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.customers.models import Customer
from core.db.lists import IdListQuery, padded
from core.db.session import create_sessionmaker
from core.ingest.repository import known_messages


def test_padded_repeats_the_last_value_up_to_a_power_of_two() -> None:
    assert padded([]) == []
    assert padded([7]) == [7]
    assert padded([1, 2]) == [1, 2]
    assert padded([1, 2, 3]) == [1, 2, 3, 3]
    assert padded(iter([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")])) == [
        ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5"), ("e", "5"), ("e", "5"), ("e", "5")]
    assert [len(padded(range(n))) for n in range(1, 66)] == [1, 2, 4, 4] + [8] * 4 + [16] * 8 + [32] * 16 + \
        [64] * 32 + [128]


async def test_a_lookup_has_one_statement_per_power_of_two(db_engine: AsyncEngine) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db_engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with create_sessionmaker(db_engine)() as session:
            for n in range(5, 9):  # 5..8 keys: one shape
                assert await known_messages(session, [("telegram", str(i)) for i in range(n)]) == set()
            await known_messages(session, [("telegram", str(i)) for i in range(9)])
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 5
    assert len(set(statements[:4])) == 1
    assert statements[4] != statements[0]


async def test_an_id_list_query_is_one_statement_on_postgresql_and_padded_elsewhere(db_engine: AsyncEngine) -> None:
    at = datetime(2026, 3, 2, tzinfo=UTC)
    lookup = IdListQuery.build(lambda match: select(Customer.id).where(match(Customer.id)).order_by(Customer.id))
    sessionmaker = create_sessionmaker(db_engine)
    async with sessionmaker() as session, session.begin():
        customers = [Customer(name=f"c{i}", created_at=at, updated_at=at) for i in range(6)]
        session.add_all(customers)
        await session.flush()
        ids = [c.id for c in customers]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db_engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with sessionmaker() as session:
            for n in range(7):
                wanted = ids[:n] + ids[:1]  # a repeat changes nothing
                assert list(await session.scalars(*lookup.bound(session, wanted))) == sorted(set(wanted))
            assert list(await session.scalars(*lookup.bound(session, []))) == []
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", seen)
    if db_engine.dialect.name == "postgresql":
        assert len(set(statements)) == 1 and "ANY" in statements[0]
    else:
        assert len(set(statements)) == 5  # 1, 2, 4, 8 values and the empty list
