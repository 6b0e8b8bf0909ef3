"""Ticket search on both databases: word forms, stems, identifiers, phrases, prefixes, filters, visibility, erasure,
ranking and snippets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.customers import service as customers
from core.customers.models import ChannelIdentity, Customer
from core.orders.models import Order
from core.search import query as search_query
from core.search import service as search_service
from core.search.service import highlight
from core.tickets import service as tickets
from core.tickets.models import AuthorKind, Direction, Message, Note, Priority, Ticket, TicketStatus
from core.tickets.repository import TicketFilter
from core.users.models import Team

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class World:
    ids: dict[str, int]


async def _ticket(session: AsyncSession, customer: Customer, subject: str, texts: list[str], *,
                  status: TicketStatus = TicketStatus.open, team: str = "technical", intent: str | None = None,
                  created: datetime = T0, notes: tuple[str, ...] = (), priority: Priority = Priority.normal) -> Ticket:
    team_id = await session.scalar(select(Team.id).where(Team.slug == team))
    ticket = Ticket(customer_id=customer.id, subject=subject, status=status, channel="email", team_id=team_id,
                    intent=intent, created_at=created, updated_at=created, last_customer_message_at=created,
                    priority=priority)
    session.add(ticket)
    await session.flush()
    for i, body in enumerate(texts):
        session.add(Message(ticket_id=ticket.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
                            channel="email", external_message_id=f"m-{ticket.id}-{i}", text=body))
    for body in notes:
        session.add(Note(ticket_id=ticket.id, text=body))
    await session.flush()
    return ticket


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession]) -> World:
    ids: dict[str, int] = {}
    async with sessionmaker() as s, s.begin():
        anna = Customer(name="Анна Котова", email="anna.kotova@example.org", phone="+79161234567", language="ru")
        john = Customer(name="John Smith", email="john@example.com", phone="+1 555 010 9999", language="en")
        erased = Customer(name="Пётр Секретов", email="secret@example.org", phone="+79990000001", language="ru")
        s.add_all([anna, john, erased])
        await s.flush()
        s.add(ChannelIdentity(customer_id=john.id, channel="telegram", external_id="tg-777001"))
        s.add(Order(number="ORD-2026-000042", customer_id=anna.id, status="shipped"))
        tickets_ = {
            "router_gen": await _ticket(s, anna, "Интернет", ["Замена роутера, когда приедет мастер?"]),
            "router_ins": await _ticket(s, anna, "Связь", ["Проблема с роутером: нет Wi-Fi"], intent="internet_down",
                                        status=TicketStatus.pending, created=T0 + timedelta(days=3)),
            "router_nom": await _ticket(s, john, "Роутер", ["Hello"], team="billing", created=T0 + timedelta(days=5)),
            "routers_en": await _ticket(s, john, "Hardware", ["The routers you sent do not work"],
                                        created=T0 + timedelta(days=7)),
            "connecting": await _ticket(s, john, "Setup", ["I have trouble connecting the modem"]),
            "phrase": await _ticket(s, anna, "Жалоба", ["У меня не работает интернет с утра"]),
            "not_phrase": await _ticket(s, anna, "Другое", ["Интернет работает, но не телевидение"]),
            "prefix": await _ticket(s, john, "Модемы", ["Какие модемы вы продаёте?"]),
            "note": await _ticket(s, john, "Billing", ["Invoice please"], notes=("Клиент просил перезвонить",)),
            "email_text": await _ticket(s, john, "Forward", ["Please reply to anna.kotova@example.org"]),
            "xss": await _ticket(s, john, "XSS", ["<script>alert(1)</script> роутер <b>сгорел</b>"]),
            "erased": await _ticket(s, erased, "Роутер секретный", ["Мой роутер и мой секрет"],
                                    notes=("Роутер у Секретова",)),
            "merged": await _ticket(s, john, "Роутер дубликат", ["Роутер снова не работает"]),
        }
        await s.execute(update(Ticket).where(Ticket.id == tickets_["merged"].id)
                        .values(merged_into_id=tickets_["router_nom"].id))
        ids = {k: t.id for k, t in tickets_.items()} | {"anna": anna.id, "john": john.id, "erased_customer": erased.id}
    async with sessionmaker() as s, s.begin():
        await customers.erase(s, ids["erased_customer"], None)
    return World(ids)


async def found(sessionmaker: async_sessionmaker[AsyncSession], q: str, **filters: object) -> list[int]:
    async with sessionmaker() as s:
        page = await tickets.search(s, TicketFilter(query=q, **filters), limit=50)  # type: ignore[arg-type]
    return [t.id for t in page.tickets]


def names(world: World, ids: list[int]) -> set[str]:
    by_id = {v: k for k, v in world.ids.items() if k not in ("anna", "john", "erased_customer")}
    return {by_id[i] for i in ids}


async def test_russian_word_forms_find_each_other(world: World, sessionmaker: async_sessionmaker[AsyncSession]
                                                  ) -> None:
    expected = {"router_gen", "router_ins", "router_nom", "xss"}
    for q in ("роутер", "роутера", "роутером", "РОУТЕРЫ"):
        assert names(world, await found(sessionmaker, q)) == expected, q


async def test_english_stems(world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    assert names(world, await found(sessionmaker, "router")) == {"routers_en"}
    assert names(world, await found(sessionmaker, "connection")) == {"connecting"}


async def test_phrase_and_prefix(world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    assert names(world, await found(sessionmaker, '"не работает интернет"')) == {"phrase"}
    # Without quotes the words may be anywhere in the same text.
    assert names(world, await found(sessionmaker, "работает интернет")) >= {"phrase", "not_phrase"}
    assert names(world, await found(sessionmaker, "моде*")) == {"prefix"}
    assert names(world, await found(sessionmaker, "mode*")) == {"connecting"}
    assert names(world, await found(sessionmaker, "модемы")) >= {"prefix"}


async def test_identifiers(world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna_tickets = {"router_gen", "router_ins", "phrase", "not_phrase"}
    # By the customer's e-mail, and a message that mentions it.
    assert names(world, await found(sessionmaker, "anna.kotova@example.org")) == anna_tickets | {"email_text"}
    for phone in ("+7 (916) 123-45-67", "89161234567", "916 123 45 67"):
        assert names(world, await found(sessionmaker, phone)) == anna_tickets, phone
    assert await found(sessionmaker, f"T-{world.ids['phrase']:06d}") == [world.ids["phrase"]]
    assert names(world, await found(sessionmaker, "ORD-2026-000042")) == anna_tickets
    assert names(world, await found(sessionmaker, "tg-777001")) >= {"routers_en", "connecting"}
    # The customer's name, in another word form.
    assert names(world, await found(sessionmaker, "Котовой")) >= anna_tickets


async def test_notes_and_subjects_are_searched(world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    assert names(world, await found(sessionmaker, "перезвонить")) == {"note"}
    assert names(world, await found(sessionmaker, "жалоба")) == {"phrase"}


async def test_filters_beside_the_query(world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    q = "роутер"
    assert names(world, await found(sessionmaker, q, status=(TicketStatus.pending,))) == {"router_ins"}
    assert names(world, await found(sessionmaker, q, team_slug="billing")) == {"router_nom"}
    assert names(world, await found(sessionmaker, q, intent="internet_down")) == {"router_ins"}
    assert names(world, await found(sessionmaker, q, created_after=T0 + timedelta(days=2),
                                    created_before=T0 + timedelta(days=4))) == {"router_ins"}
    assert names(world, await found(sessionmaker, q, status=(TicketStatus.open,), team_slug="technical",
                                    created_after=T0 - timedelta(days=1))) == {"router_gen", "xss"}


async def test_erased_customers_and_merged_tickets_are_never_found(
        world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    for q in ("секрет", "Секретов", "secret@example.org", "+7 999 000-00-01", "роутер", "дубликат"):
        got = names(world, await found(sessionmaker, q))
        assert not got & {"erased", "merged"}, q
    # Not even by its number: an erased customer's ticket stays for statistics, not for search.
    assert await found(sessionmaker, f"T-{world.ids['erased']:06d}") == []


async def test_ranked_with_a_highlighted_snippet(world: World, sessionmaker: async_sessionmaker[AsyncSession]
                                                 ) -> None:
    async with sessionmaker() as s:
        page = await tickets.search(s, TicketFilter(query="роутер"), limit=50)
    ids = [t.id for t in page.tickets]
    # The subject names it: first.
    assert ids[0] == world.ids["router_nom"]
    match = page.matches[world.ids["router_ins"]]
    assert match.source == "message"
    assert match.snippet is not None
    marked = [piece for piece, on in match.snippet.segments() if on]
    assert marked == ["роутером"]
    xss = page.matches[world.ids["xss"]].snippet
    assert xss is not None
    # The snippet is text: markup in it stays text for the template to escape.
    assert "<script>" in xss.text
    assert [p for p, on in xss.segments() if on] == ["роутер"]
    assert page.total == 4
    assert not page.total_is_capped


async def test_index_follows_edits_and_deletes(world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Message).where(Message.ticket_id == world.ids["prefix"]).values(text="Про антенну"))
        await s.execute(update(Ticket).where(Ticket.id == world.ids["prefix"]).values(subject="Антенна"))
    assert "prefix" not in names(world, await found(sessionmaker, "модемы"))
    assert names(world, await found(sessionmaker, "антенна")) == {"prefix"}
    async with sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM tickets WHERE id = :id"), {"id": world.ids["prefix"]})
    assert await found(sessionmaker, "антенна") == []


async def test_nonsense_and_stop_words_find_nothing_without_error(
        world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    for q in ('"', "*", "и", "'; DROP TABLE tickets; --", "a & b | !c", "NEAR(x y)", "\\", ":*", "()"):
        await found(sessionmaker, q)  # no error, whatever it finds
    assert await found(sessionmaker, "щщщщщщ") == []


def test_query_parsing() -> None:
    q = search_query.parse('роутер "не работает" моде* anna@example.org T-000012 ORD-2026-1 tg-5')
    assert [t.word for t in q.terms] == ["роутер", "моде"]
    assert q.terms[1].prefix
    assert q.phrases == (("не", "работает"),)
    assert q.emails == ("anna@example.org",)
    assert q.ticket_id == 12
    assert q.identifiers == ("ord-2026-1", "tg-5")
    assert search_query.parse("+7 (916) 123-45-67").phone_digits == "79161234567"
    assert search_query.fts5_query(search_query.parse("роутером")) == '"роутер"*'
    assert search_query.pg_tsquery(search_query.parse('a* "b c"')) == "'a':* & ('b' <-> 'c')"


def test_snippet_window_and_spans() -> None:
    body = "начало " + "слово " * 60 + "роутера конец " + "хвост " * 40
    snippet = highlight(body, search_query.parse("роутер"), width=80)
    assert snippet.text.startswith("…") and snippet.text.endswith("…")
    assert [p for p, on in snippet.segments() if on] == ["роутера"]
    # Every match inside the piece is marked, none beyond it (a long e-mail is read only up to the piece's end).
    body = "слово " * 60 + "Роутера и Router, routers " + "хвост " * 30 + "роутер " + "ещё " * 500 + "роутером"
    snippet = highlight(body, search_query.parse("роутер router"), width=80)
    assert [p for p, on in snippet.segments() if on] == ["Роутера", "Router", "routers"]
    assert [p for p, on in highlight(body, search_query.parse("роут*"), width=2000).segments() if on] == [
        "Роутера", "роутер"]


async def test_a_word_in_a_text_and_another_in_the_customers_name(
        world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    # Anna Kotova wrote about her router (роутера, роутером); John's router tickets do not name her.
    assert names(world, await found(sessionmaker, "роутер Котова")) == {"router_gen", "router_ins"}
    assert names(world, await found(sessionmaker, "Котовой роутером")) == {"router_gen", "router_ins"}
    assert names(world, await found(sessionmaker, "routers smith")) == {"routers_en"}
    # The name counts beside the text: no customer is called "интернет", nobody wrote "роутер" with "мастер" and
    # "Smith" together, and an erased customer's name is never matched.
    assert names(world, await found(sessionmaker, "роутер интернет")) == set()
    assert names(world, await found(sessionmaker, "роутер Smith")) == {"router_nom", "xss"}  # the merged one hidden
    assert await found(sessionmaker, "роутер Секретов") == []
    # Filters apply to such matches too.
    assert names(world, await found(sessionmaker, "роутер Котова", status=[TicketStatus.pending])) == {"router_ins"}


async def test_the_split_reading_keeps_its_newest_and_says_the_total_is_a_lower_bound(
        world: World, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    # A common word among a common surname's tickets: the split reading stops at its own limit (newest first).
    monkeypatch.setattr(search_service, "NAME_CANDIDATES", 1)
    async with sessionmaker() as s:
        page = await tickets.search(s, TicketFilter(query="роутер Котова"), limit=50)
    assert names(world, [t.id for t in page.tickets]) == {"router_ins"}  # the newer of Anna's two router tickets
    assert page.total_is_capped
    monkeypatch.setattr(search_service, "NAME_CANDIDATES", 2)
    async with sessionmaker() as s:
        page = await tickets.search(s, TicketFilter(query="роутер Котова"), limit=50)
    assert names(world, [t.id for t in page.tickets]) == {"router_gen", "router_ins"}


async def test_a_search_narrowed_by_filters_ranks_its_newest_few_per_source(
        world: World, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    # Every console inbox view filters by status: such a search ranks the newest NARROWED_CANDIDATES matches per
    # source, and says the total is a lower bound when a source filled them.
    statuses = [TicketStatus.new, TicketStatus.open, TicketStatus.pending]
    async with sessionmaker() as s:
        wide = await tickets.search(s, TicketFilter(query="роутер", status=statuses), limit=50)
    assert len(wide.tickets) >= 2 and not wide.total_is_capped
    monkeypatch.setattr(search_service, "NARROWED_CANDIDATES", 1)
    async with sessionmaker() as s:
        narrow = await tickets.search(s, TicketFilter(query="роутер", status=statuses), limit=50)
        plain = await tickets.search(s, TicketFilter(query="роутер"), limit=50)
    assert narrow.total_is_capped and len(narrow.tickets) < len(wide.tickets)
    assert {t.id for t in narrow.tickets} <= {t.id for t in wide.tickets}  # the filters still hold
    # Without filters beside the words the limit is CANDIDATES: nothing is cut.
    assert not plain.total_is_capped and {t.id for t in wide.tickets} <= {t.id for t in plain.tickets}


async def test_search_pages_by_cursor_without_skipping_or_repeating(
        world: World, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    everything = await found(sessionmaker, "роутер")
    seen: list[int] = []
    cursor = None
    for pages in range(20):
        async with sessionmaker() as s:
            page = await tickets.search(s, TicketFilter(query="роутер"), limit=1, cursor=cursor)
        seen += [t.id for t in page.tickets]
        # New tickets about a router arrive between the first pages (shown later if they rank after the cursor).
        async with sessionmaker() as w, w.begin():
            anna = await w.get(Customer, world.ids["anna"])
            assert anna is not None
            if pages < 3:
                await _ticket(w, anna, "Новый", ["Опять роутер"], created=T0 + timedelta(days=30))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a result was repeated"
    assert [i for i in seen if i in everything] == everything, "a result was skipped"
    assert len(everything) == 4
