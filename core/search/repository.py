"""All search queries: candidate tickets per source (texts, customers, identifiers), one query each.

Every candidate query joins the ticket and its customer, so the filters beside the query, what the caller may see
and the erasure rule (an erased customer is never found) apply inside it, and stops at `limit` rows, newest first:
a word found in half the messages costs `limit` rows, not half the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.customers.models import ChannelIdentity, Customer
from core.orders.models import Order
from core.search.indexes import TS_CONFIG
from core.search.query import SearchQuery, fts5_query, pg_tsquery, stem
from core.tickets.models import Message, Note, Ticket
from core.tickets.repository import TicketFilter, conditions

# Weights of where a ticket matched: an identifier names the ticket, the subject sums it up, a message or note
# mentions it. Text ranks (ts_rank_cd on PostgreSQL, bm25 on SQLite) are scaled into 0..1 before the weight.
Rows = Select[*tuple[Any, ...]]
"""A candidate query: (ticket id, source, message or note id, text rank)."""

WEIGHTS = {"ticket": 100.0, "order": 20.0, "email": 15.0, "phone": 15.0, "identity": 12.0, "customer": 4.0,
           "subject": 3.0, "message": 2.0, "note": 1.5}


@dataclass(frozen=True, slots=True)
class Candidate:
    ticket_id: int
    source: str  # a key of WEIGHTS
    ref_id: int | None  # the message or note that matched
    score: float


def _ticket_scope(flt: TicketFilter) -> list[ColumnElement[bool]]:
    return [*conditions(flt), Customer.erased_at.is_(None)]


def _scoped(stmt: Rows, flt: TicketFilter) -> Rows:
    return stmt.join(Customer, Customer.id == Ticket.customer_id).where(*_ticket_scope(flt))


async def _rows(session: AsyncSession, stmt: Rows) -> list[Candidate]:
    return [Candidate(int(t), str(s), int(r) if r is not None else None, float(score or 0))
            for t, s, r, score in (await session.execute(stmt)).all()]


def _pg_tsv(column: Any) -> ColumnElement[object]:
    # Spelled exactly as the index expression (core/search/indexes.py), or the planner cannot use the index.
    return func.to_tsvector(literal_column(f"'{TS_CONFIG}'::regconfig"), column)


async def text_candidates(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int
                          ) -> list[Candidate]:
    """Tickets whose subject, one message or one note holds every word and phrase of the query."""
    if not query.has_text and not query.emails:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return await _pg_text(session, query, flt, limit)
    return await _sqlite_text(session, query, flt, limit)


# PostgreSQL: the newest rows first, in widening windows of ids. A word in every tenth message fills its
# candidates from the first window (the GIN bitmap ANDed with an id range: a few thousand rows read); a rare one
# falls through to the whole table, where its GIN bitmap is small anyway. Ordering by `id + 0` keeps the planner
# from walking the primary key backwards and computing to_tsvector for every row until enough match (minutes
# for a word that is nowhere).
PG_WINDOWS: tuple[int | None, ...] = (50_000, 400_000, None)


async def _pg_text(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int) -> list[Candidate]:
    tsq_text = pg_tsquery(query)
    if tsq_text is None:
        return []
    tsq = func.to_tsquery(literal_column(f"'{TS_CONFIG}'::regconfig"), tsq_text)
    found: list[Candidate] = []
    # ts_rank_cd normalisation 32: rank / (rank + 1), in 0..1.
    sources: list[tuple[Any, Rows]] = [
        (Ticket.id, select(Ticket.id, literal("subject"), literal(None),
                           func.ts_rank_cd(_pg_tsv(Ticket.subject), tsq, 32))
         .where(_pg_tsv(Ticket.subject).op("@@")(tsq))),
        (Message.id, select(Message.ticket_id, literal("message"), Message.id,
                            func.ts_rank_cd(_pg_tsv(Message.text), tsq, 32))
         .join(Ticket, Ticket.id == Message.ticket_id).where(_pg_tsv(Message.text).op("@@")(tsq))),
        (Note.id, select(Note.ticket_id, literal("note"), Note.id, func.ts_rank_cd(_pg_tsv(Note.text), tsq, 32))
         .join(Ticket, Ticket.id == Note.ticket_id).where(_pg_tsv(Note.text).op("@@")(tsq))),
    ]
    # Bitmap scans only, for these statements: the planner otherwise walks the id range row by row computing
    # to_tsvector (its cost model prices that at a fraction of what it costs) instead of ANDing the GIN bitmap with
    # the id range's bitmap; measured on a year of data, 0.8 s against 0.05-0.3 s (bench/scale.py).
    # (Not restored in a `finally`: after an error the transaction is aborted and the error is what must surface.)
    newest = (await session.execute(select(*(select(func.max(id_col)).scalar_subquery() for id_col, _ in sources)))
              ).one()  # before the setting: the newest id is a read at the end of the primary key
    await session.execute(text("SET LOCAL enable_indexscan = off"))
    for (id_col, stmt), last in zip(sources, newest, strict=True):
        found += await _pg_newest(session, id_col, int(last or 0), stmt, flt, limit)
    await session.execute(text("SET LOCAL enable_indexscan = on"))
    return found


async def _pg_newest(session: AsyncSession, id_col: Any, newest: int, stmt: Rows, flt: TicketFilter, limit: int
                     ) -> list[Candidate]:
    """The newest `limit` candidates of one source, looked for in widening windows of ids below `newest`."""
    for window in PG_WINDOWS:
        whole = window is None or window >= newest
        windowed = stmt if whole else stmt.where(id_col > newest - (window or 0))
        rows = await _rows(session, _scoped(windowed, flt).order_by((id_col + 0).desc()).limit(limit))
        if len(rows) >= limit or whole:
            return rows
    return []


async def _sqlite_text(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int
                       ) -> list[Candidate]:
    match = fts5_query(query)
    if match is None:
        return []
    found: list[Candidate] = []
    for fts, source, ticket_col, ref_col in (
        ("fts_tickets", "subject", Ticket.id, None),
        ("fts_messages", "message", Message.ticket_id, Message.id),
        ("fts_notes", "note", Note.ticket_id, Note.id),
    ):
        fts_table: ColumnElement[Any] = literal_column(fts)
        rowid: ColumnElement[int] = literal_column(f"{fts}.rowid")
        # bm25 is negative, lower is better: -bm25 / (1 - bm25) maps it into 0..1 like PostgreSQL's rank.
        rank = -func.bm25(fts_table) / (1 - func.bm25(fts_table))
        stmt: Rows = select(
            ticket_col, literal(source), ref_col if ref_col is not None else literal(None), rank)
        stmt = stmt.select_from(table(fts))
        if source == "subject":
            stmt = stmt.join(Ticket, Ticket.id == rowid)
        else:
            owner = Message if source == "message" else Note
            stmt = stmt.join(owner, owner.id == rowid).join(Ticket, Ticket.id == owner.ticket_id)
        stmt = stmt.where(fts_table.op("MATCH")(match)).order_by(rowid.desc())
        found += await _rows(session, _scoped(stmt, flt).limit(limit))
    return found


async def identifier_candidates(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int
                                ) -> list[Candidate]:
    """Tickets found by what names them or their customer: number, e-mail, phone, channel id, order number, the
    customer's name."""
    pg = session.get_bind().dialect.name == "postgresql"
    found: list[Candidate] = []

    def of_customers(source: str, customer_ids: Select[*tuple[Any, ...]], score: float = 1.0
                     ) -> Rows:
        return (select(Ticket.id, literal(source), literal(None), literal(score))
                .where(Ticket.customer_id.in_(customer_ids.scalar_subquery())).order_by(Ticket.id.desc()))

    statements: list[Rows] = []
    if query.ticket_id is not None:
        statements.append(select(Ticket.id, literal("ticket"), literal(None), literal(1.0))
                          .where(Ticket.id == query.ticket_id))
    for email in query.emails:
        # Exact first (the btree on customers.email), then an address this one is part of.
        # PostgreSQL: lower(email) is in a trigram index (equality included); SQLite: the exact address (its btree).
        statements.append(of_customers("email", select(Customer.id).where(
            func.lower(Customer.email) == email if pg else Customer.email.in_([email, email.upper()]))))
        statements.append(of_customers("identity", select(ChannelIdentity.customer_id).where(
            func.lower(ChannelIdentity.external_id) == email)))
    if query.phone_digits:
        digits = query.phone_digits
        # Constants spelled into the SQL, as in the index expression (bound parameters would not match it).
        phone = (func.regexp_replace(Customer.phone, literal_column("'[^0-9]'"), literal_column("''"),
                                     literal_column("'g'")) if pg else _sqlite_digits(Customer.phone))
        # The last 10 digits: +7 916 ..., 8 916 ... and 916 ... are one number.
        statements.append(of_customers("phone", select(Customer.id).where(phone.contains(digits[-10:]))))
        statements.append(of_customers("identity", select(ChannelIdentity.customer_id).where(
            func.lower(ChannelIdentity.external_id).contains(digits[-10:]))))
    for ident in query.identifiers:
        # The order's number: lower(number) in a trigram index on PostgreSQL; as typed or upper-cased on SQLite
        # (the unique btree on number).
        statements.append(of_customers("order", select(Order.customer_id).where(
            func.lower(Order.number) == ident if pg else Order.number.in_([ident, ident.upper()]))))
        statements.append(of_customers("identity", select(ChannelIdentity.customer_id).where(
            func.lower(ChannelIdentity.external_id).contains(ident, autoescape=True)), 0.8))
    name_words = [t.word for t in query.terms] + [w for phrase in query.phrases for w in phrase]
    if name_words and not query.identifiers:
        # A customer's name holds every word (word forms too: "Котовой" finds "Котова" through the stem).
        name_conds = [func.lower(Customer.name).contains(stem(w) if len(stem(w)) >= 3 else w, autoescape=True)
                      for w in name_words]
        statements.append(of_customers("customer", select(Customer.id).where(*name_conds)))
        if len(name_words) == 1 and len(name_words[0]) >= 3:
            statements.append(of_customers("email", select(Customer.id).where(
                func.lower(Customer.email).contains(name_words[0], autoescape=True)), 0.5))
    for stmt in statements:
        found += await _rows(session, _scoped(stmt, flt).limit(limit))
    return found


def _sqlite_digits(column: Any) -> ColumnElement[str]:
    digits: ColumnElement[str] = func.coalesce(column, "")
    for char in ("+", " ", "-", "(", ")", "."):
        digits = func.replace(digits, char, "")
    return digits


async def texts_of(session: AsyncSession, candidates: Sequence[Candidate]
                   ) -> tuple[dict[int, str], dict[int, str]]:
    """The texts of the messages and notes some candidates matched in, by id."""
    message_ids = [c.ref_id for c in candidates if c.source == "message" and c.ref_id is not None]
    note_ids = [c.ref_id for c in candidates if c.source == "note" and c.ref_id is not None]
    messages = {i: t for i, t in (await session.execute(
        select(Message.id, Message.text).where(Message.id.in_(message_ids)))).all()} if message_ids else {}
    notes = {i: t for i, t in (await session.execute(
        select(Note.id, Note.text).where(Note.id.in_(note_ids)))).all()} if note_ids else {}
    return messages, notes
