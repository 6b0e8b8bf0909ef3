"""The PostgreSQL text search's plans (first window, tickets in scope, walk, bitmap windows) return the same rows.

The windows and thresholds are a year's sizes; here they are shrunk so a few dozen tickets take every path, and
each path's candidates are compared with the plain answer (every window the whole table). On SQLite the search has
one plan (FTS5), which the same comparisons hold for trivially.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.customers.models import Customer
from core.search import repository
from core.search.query import parse
from core.tickets.models import AuthorKind, Direction, Message, Note, Priority, Ticket, TicketStatus
from core.tickets.repository import TicketFilter
from core.users.models import Team

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMIT = 6


@pytest.fixture
async def many(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """60 tickets of three customers over two queues, most texts about a router, some about a tariff."""
    async with sessionmaker() as s, s.begin():
        teams = {slug: await s.scalar(select(Team.id).where(Team.slug == slug)) for slug in ("billing", "technical")}
        people = [Customer(name=n, language="ru") for n in ("Анна Котова", "Иван Петров", "Мария Котова")]
        s.add_all(people)
        await s.flush()
        for i in range(60):
            ticket = Ticket(customer_id=people[i % 3].id, subject="Роутер" if i % 4 == 0 else "Вопрос",
                            status=TicketStatus.open if i % 5 == 0 else TicketStatus.closed, channel="email",
                            team_id=teams["billing" if i % 2 else "technical"], created_at=T0 + timedelta(hours=i),
                            updated_at=T0, priority=Priority.high if i % 7 == 0 else Priority.normal)
            s.add(ticket)
            await s.flush()
            texts = ["Роутер не работает", "Смена тарифа" if i % 3 == 0 else "Роутером доволен", "Спасибо"]
            for n, body in enumerate(texts):
                s.add(Message(ticket_id=ticket.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
                              channel="email", external_message_id=f"p-{i}-{n}", text=body))
            if i % 2 == 0:
                s.add(Note(ticket_id=ticket.id, text="Роутер заменён" if i % 4 == 0 else "Перезвонить про тариф"))
        await s.flush()


def _shrunk(monkeypatch: pytest.MonkeyPatch, *, scope: int, margin: float) -> None:
    monkeypatch.setattr(repository, "PG_WINDOWS", (5, 40, None))
    monkeypatch.setattr(repository, "SCOPE_PER_TICKET", scope)
    monkeypatch.setattr(repository, "WALK_MARGIN", margin)


PATHS = {
    # name -> (tickets in scope up to which each is checked, walk margin)
    "tickets in scope": (10**9, 10**9),
    "walk": (0, 0.0),
    "bitmap windows": (0, float(10**9)),
}
CASES = [
    ("роутер", TicketFilter(), ()),
    ("тариф", TicketFilter(status=[TicketStatus.open], team_slug="billing"), ()),
    ("роутер", TicketFilter(priority=[Priority.high]), ()),
    ("роутер", TicketFilter(), ("котов",)),
    ("тариф", TicketFilter(status=[TicketStatus.closed]), ("котов",)),
    ("спасибо", TicketFilter(team_slug="technical"), ()),
    ("нигде", TicketFilter(status=[TicketStatus.open]), ()),
]


async def _candidates(sessionmaker: async_sessionmaker[AsyncSession], q: str, flt: TicketFilter,
                      name: tuple[str, ...]) -> list[repository.Candidate]:
    async with sessionmaker() as s, s.begin():
        extra = [repository.name_holds(w) for w in name]
        return await repository.text_candidates(s, parse(q), flt, LIMIT, extra)


@pytest.mark.usefixtures("many")
async def test_every_plan_finds_the_same_newest_matches(
        sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    plain = {}
    monkeypatch.setattr(repository, "PG_WINDOWS", (None, None, None))
    for i, (q, flt, name) in enumerate(CASES):
        plain[i] = await _candidates(sessionmaker, q, flt, name)
    # The cases find something, and more than LIMIT where the paths matter (so the first window falls short).
    assert all(plain[i] for i in range(len(CASES) - 1)) and plain[len(CASES) - 1] == []
    assert len([c for c in plain[0] if c.source == "message"]) == LIMIT
    statements: list[str] = []
    engine = sessionmaker.kw["bind"]

    def seen(_conn: object, _cursor: object, statement: str, parameters: object, *_args: object) -> None:
        statements.append(f"{statement} {parameters!r}")

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        for path, (scope, margin) in PATHS.items():
            _shrunk(monkeypatch, scope=scope, margin=margin)
            walks_beyond_first = 0
            taken: list[str] = []
            for i, (q, flt, name) in enumerate(CASES):
                statements.clear()
                got = await _candidates(sessionmaker, q, flt, name)
                assert got == plain[i], (path, q, flt, name)
                taken += statements
                # A search narrowed by filters walks the first window of messages and notes (no phrase here); a
                # walk beyond that is the second window's.
                first_walks = 2 if repository.narrows(flt) else 0
                walks_beyond_first += sum("'enable_hashjoin', 'off'" in st for st in statements) - first_walks
            if engine.dialect.name == "postgresql":  # each path was taken (SQLite has one plan)
                marker = {"tickets in scope": "EXPLAIN", "walk": "'enable_hashjoin', 'off'",
                          "bitmap windows": "'enable_indexscan', 'off'"}[path]
                assert any(marker in st for st in taken), path
                # Planned for its own words: never a generic plan of a statement prepared for other words.
                assert all("'plan_cache_mode', 'force_custom_plan'" in " ".join(taken[:taken.index(st)])
                           for st in taken if "ts_rank_cd" in st), path
                if path == "walk":
                    assert walks_beyond_first > 0, path
                if path == "tickets in scope":  # and no narrowed search went on to a walk
                    assert walks_beyond_first == 0, path
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


@pytest.mark.usefixtures("many")
async def test_filters_and_names_hold_on_every_plan(
        sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    for path, (scope, margin) in PATHS.items():
        _shrunk(monkeypatch, scope=scope, margin=margin)
        found = await _candidates(sessionmaker, "тариф", TicketFilter(status=[TicketStatus.open],
                                                                      team_slug="billing"), ())
        async with sessionmaker() as s:
            tickets = {t.id: t for t in (await s.scalars(select(Ticket).where(
                Ticket.id.in_([c.ticket_id for c in found])))).all()}
            billing = await s.scalar(select(Team.id).where(Team.slug == "billing"))
        assert found, path
        assert all(t.status == TicketStatus.open and t.team_id == billing for t in tickets.values()), path
        # The newest first within each source, never more than the limit.
        for source in ("subject", "message", "note"):
            refs = [c.ref_id or c.ticket_id for c in found if c.source == source]
            assert refs == sorted(refs, reverse=True) and len(refs) <= LIMIT, (path, source)
