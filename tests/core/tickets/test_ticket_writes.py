"""`tickets.repository.write_changes`: the ingest's ticket changes as one executemany UPDATE per set of changed
columns, the tickets left clean for the session's flush; what it cannot write is left to the flush."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from core.customers.models import ChannelIdentity, Customer
from core.tickets import repository
from core.tickets.models import Ticket, TicketStatus

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, bool, int]]]:
    """The UPDATE statements sent meanwhile: (SQL, executemany, parameter sets)."""
    seen: list[tuple[str, bool, int]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append((statement, many, len(parameters) if many else 1))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def tickets(sessionmaker: async_sessionmaker[AsyncSession], n: int) -> list[int]:
    async with sessionmaker() as session, session.begin():
        customer = Customer(name="c", created_at=AT, updated_at=AT)
        identity = ChannelIdentity(customer=customer, channel="telegram", external_id="42", created_at=AT)
        session.add_all([customer, identity])
        rows = [Ticket(customer=customer, identity=identity, subject=f"s{i}", status=TicketStatus.bot,
                       channel="telegram", language="en", created_at=AT, updated_at=AT) for i in range(n)]
        session.add_all(rows)
        await session.flush()
        return [t.id for t in rows]


async def load(session: AsyncSession, ids: list[int]) -> list[Ticket]:
    rows = (await session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)
                                  .options(joinedload(Ticket.customer), joinedload(Ticket.identity)))).unique().all()
    return list(rows)


async def test_alternating_column_sets_are_two_statements_and_the_flush_sends_none(
        db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ids = await tickets(sessionmaker, 6)
    async with sessionmaker() as session, session.begin():
        rows = await load(session, ids)
        for i, ticket in enumerate(rows):  # in id order the column sets alternate: the flush went row by row
            ticket.updated_at = LATER
            if i % 2:
                ticket.status = TicketStatus.open
                ticket.intent = "internet_down"
            ticket.language = "en"  # its own value: not a change
        with statements(db_engine) as seen:
            await repository.write_changes(session, rows + rows[:2])  # two tickets with two messages each
            assert not session.dirty
            await session.flush()
        assert sorted(n for _, _, n in seen) == [3, 3]
        assert all(many for _, many, _ in seen)
        assert all("language" not in sql for sql, _, _ in seen)
    async with sessionmaker() as session:
        rows = await load(session, ids)
        assert [t.status for t in rows] == [TicketStatus.bot, TicketStatus.open] * 3
        assert [t.intent for t in rows] == [None, "internet_down"] * 3
        assert {t.updated_at for t in rows} == {LATER}


async def test_a_ticket_set_to_another_identity_is_left_to_the_flush(
        db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    first, second = await tickets(sessionmaker, 2)
    async with sessionmaker() as session, session.begin():
        moved, stays = await load(session, [first, second])
        other = ChannelIdentity(customer=moved.customer, channel="telegram", external_id="43", created_at=AT)
        session.add(other)
        moved.identity = other  # a new row: its id exists only after the flush
        moved.updated_at = stays.updated_at = LATER
        stays.identity = stays.identity  # the same object again: no change
        await repository.write_changes(session, [moved, stays])
        assert moved in session.dirty and stays not in session.dirty
        await session.flush()
        other_id = other.id
    async with sessionmaker() as session:
        moved, stays = await load(session, [first, second])
        assert moved.identity_id == other_id and moved.updated_at == LATER
        assert stays.identity_id != other_id and stays.updated_at == LATER


async def test_new_and_unchanged_tickets_are_not_written(
        db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    (known,) = await tickets(sessionmaker, 1)
    async with sessionmaker() as session, session.begin():
        (ticket,) = await load(session, [known])
        ticket.subject = ticket.subject  # set to its own value
        fresh = Ticket(customer=ticket.customer, identity=ticket.identity, subject="new", status=TicketStatus.new,
                       channel="telegram", created_at=AT, updated_at=AT)
        session.add(fresh)
        with statements(db_engine) as seen:
            await repository.write_changes(session, [ticket, fresh])
        assert seen == []
        await session.flush()
        assert fresh.id is not None


def test_tickets_have_no_python_side_onupdate() -> None:
    # write_changes writes what the code set; a column filled in on update would be missed.
    assert [c.name for c in Ticket.__table__.columns if c.onupdate is not None] == []
