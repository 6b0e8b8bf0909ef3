"""All search queries: candidate tickets per source (texts, customers, identifiers), one query each.

Every candidate query joins the ticket and its customer, so the filters beside the query, what the caller may see
and the erasure rule (an erased customer is never found) apply inside it, and stops at `limit` rows, newest first:
a word found in half the messages costs `limit` rows, not half the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from core.customers.models import ChannelIdentity, Customer
from core.orders.models import Order
from core.search.indexes import SQLITE_FTS, TS_CONFIG, TSV_COLUMN
from core.search.query import SearchQuery, fts5_query, pg_tsquery, stem
from core.tickets.models import Message, Note, Ticket
from core.tickets.repository import TicketFilter, conditions, visible

# Weights of where a ticket matched: an identifier names the ticket, the subject sums it up, a message or note
# mentions it. Text ranks (ts_rank_cd on PostgreSQL, text length on SQLite) are scaled into 0..1 before the weight.
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


def _scoped(stmt: Rows, flt: TicketFilter, extra: Sequence[ColumnElement[bool]] = ()) -> Rows:
    return stmt.join(Customer, Customer.id == Ticket.customer_id).where(*_ticket_scope(flt), *extra)


def name_holds(word: str) -> ColumnElement[bool]:
    """The customer's name holds this word (its stem: "Котовой" finds "Котова"; short stems as the whole word)."""
    stemmed = stem(word)
    return func.lower(Customer.name).contains(stemmed if len(stemmed) >= 3 else word, autoescape=True)


async def some_customer_named(session: AsyncSession, word: str) -> bool:
    """Whether any customer's name holds `word` (the trigram index on PostgreSQL; a scan of names on SQLite)."""
    return bool(await session.scalar(select(literal(1)).where(name_holds(word), Customer.erased_at.is_(None))
                                     .limit(1)))


async def _rows(session: AsyncSession, stmt: Rows) -> list[Candidate]:
    return [Candidate(int(t), str(s), int(r) if r is not None else None, float(score or 0))
            for t, s, r, score in (await session.execute(stmt)).all()]


def _pg_tsv(table: str) -> ColumnElement[Any]:
    """The stored tsvector of a searched table's text (core/search/indexes.py: outside the ORM, PostgreSQL only)."""
    return literal_column(f"{table}.{TSV_COLUMN}")


async def text_candidates(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int,
                          extra: Sequence[ColumnElement[bool]] = ()) -> list[Candidate]:
    """Tickets whose subject, one message or one note holds every word and phrase of the query (and that meet the
    `extra` conditions on Ticket and Customer)."""
    if not query.has_text and not query.emails:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return await _pg_text(session, query, flt, limit, extra)
    return await _sqlite_text(session, query, flt, limit, extra)


# PostgreSQL: the newest rows first, in widening windows of ids. The first window (the newest 50,000 rows) is
# left to the planner, which knows from the stored tsvector column's statistics how common each word is: for a
# common word it walks the window's ids downwards checking each row's stored tsvector and stops at `limit`
# matches (a word in 17 % of messages: ~6,000 rows looked at, a few ms), for a rarer one it reads the GIN index.
# A word that fills fewer than `limit` from it is rare enough for bitmap scans over the wider windows (the GIN
# bitmap ANDed with the id range's; `id + 0` keeps the planner from walking a whole table by its primary key on an
# estimate that was off, and the windows bound how far any plan reads).
#
# Unless filters or a customer's name narrow the tickets: then a common word can be rare in combination (тариф in
# open billing tickets), and its GIN bitmap (every message holding it) is what the bitmap windows cost. So, when
# the first window falls short:
# - few tickets in scope (the planner's estimate, from the filters alone): every text of those tickets is checked
#   (the tickets by their indexes, then each one's messages by ticket id: the whole table, no window, no bitmap);
# - many tickets, and the first window found enough to expect `limit` matches within the next window: that window's
#   ids are walked downwards, each row's stored tsvector and ticket checked (no bitmap);
# - otherwise (a rare combination in many tickets: the word itself is rare) the bitmap windows, as without filters.
# Every plan returns the same rows: the `limit` newest matches (ids descending) in the whole table.
PG_WINDOWS: tuple[int | None, ...] = (50_000, 400_000, None)
SCOPE_PER_TICKET = 20_000  # tickets in scope (estimated) up to which each one's texts are checked
_WALK_SETTINGS = ("enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")
# plan_cache_mode: asyncpg prepares each statement once per connection, and after five executions PostgreSQL may
# switch to a generic plan chosen without the values - for a search, without knowing how common the words are. A
# phrase searched after an English word's searches (the same statement, other words) took 233-285 ms instead of
# 82 (bench/scale.py); every search statement is planned for its own words.
_SEARCH_SETTINGS = {"max_parallel_workers_per_gather": "0", "jit": "off", "enable_seqscan": "off",
                    "plan_cache_mode": "force_custom_plan"}


async def _settings(session: AsyncSession, values: dict[str, str]) -> dict[str, str]:
    """Set planner settings for the rest of the transaction (SET LOCAL), all in one round trip; returns their
    values before, to set them back with. Not restored in a `finally`: after an error the transaction is aborted
    (and the settings with it) and the error is what must surface."""
    names = list(values)
    before = select(*(func.current_setting(n) for n in names)).offset(0).subquery()  # read before the set
    row = (await session.execute(select(*before.c, *(func.set_config(n, values[n], True) for n in names))
                                 .select_from(before))).one()
    return dict(zip(names, (str(v) for v in row[:len(names)]), strict=True))
WALK_MARGIN = 1.5  # walk the next window if the first window's rate of matches fills `limit` in 1/1.5 of it


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON)` of a statement: the planner's estimate, for choosing a plan (nothing is executed)."""

    inherit_cache = False

    def __init__(self, stmt: Rows) -> None:
        self.stmt = stmt


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.stmt, **kw))


async def estimated_rows(session: AsyncSession, stmt: Rows) -> float:
    """The planner's estimate of the rows `stmt` returns (PostgreSQL; planning only, about a millisecond)."""
    plan = (await session.execute(_Explain(stmt))).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def narrows(flt: TicketFilter) -> bool:
    """Whether a filter beside the query narrows the tickets (merged ones aside, which every search leaves out)."""
    return len(conditions(flt)) > len(visible())


async def _pg_text(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int,
                   extra: Sequence[ColumnElement[bool]]) -> list[Candidate]:
    tsq_text = pg_tsquery(query)
    if tsq_text is None:
        return []
    tsq = func.to_tsquery(literal_column(f"'{TS_CONFIG}'::regconfig"), tsq_text)
    found: list[Candidate] = []
    # ts_rank_cd normalisation 32: rank / (rank + 1), in 0..1; on the stored tsvector, so ranking reads no text.
    sources: list[tuple[str, Any, Rows]] = []
    for searched, id_col, stmt in (
        ("tickets", Ticket.id, select(Ticket.id, literal("subject"), literal(None),
                                      func.ts_rank_cd(_pg_tsv("tickets"), tsq, 32))),
        ("messages", Message.id, select(Message.ticket_id, literal("message"), Message.id,
                                        func.ts_rank_cd(_pg_tsv("messages"), tsq, 32))
         .join(Ticket, Ticket.id == Message.ticket_id)),
        ("notes", Note.id, select(Note.ticket_id, literal("note"), Note.id, func.ts_rank_cd(_pg_tsv("notes"), tsq, 32))
         .join(Ticket, Ticket.id == Note.ticket_id)),
    ):
        sources.append((searched, id_col, stmt.where(_pg_tsv(searched).op("@@")(tsq))))
    newest = (await session.execute(select(*(select(func.max(id_col)).scalar_subquery() for _, id_col, _ in sources)))
              ).one()  # a read at the end of each primary key
    # No parallel workers: starting them costs more (80-100 ms on a busy machine) than any of these bounded reads;
    # no JIT: compiling a plan (~90 ms) costs more than the rows it would speed up; no sequential scans: with a
    # customer's name in the conditions the planner hashed a scan of every ticket (0.9-1.4 s under load) where a
    # look-up of each candidate's ticket by its primary key reads a few thousand rows.
    before = await _settings(session, _SEARCH_SETTINGS)
    narrowed = bool(extra) or narrows(flt)
    # The first window is walked (nested loops down the primary key, no bitmap, no hash) when the planner's choice
    # is known to go wrong there: with filters, for messages and notes, it hashed every ticket in scope (20,000
    # active tickets: ~30 ms before the first row) to keep the 4,000 of 8,000 matches that fall in it (a subject is
    # on the ticket itself: no join to choose); for a phrase it estimates the words' adjacency far too rare (0.2 %
    # for "не работает интернет", 3 % in fact) and read the GIN index's every match in the table (94,000 rows) for
    # the 1,000 the walk finds in 33,000. The walk reads at most the window.
    by_filters = narrows(flt)  # (a customer's name in `extra` is rarer: hashing the customers it names is cheap)
    walk_first = {"tickets": bool(query.phrases), "messages": by_filters or bool(query.phrases),
                  "notes": by_filters or bool(query.phrases)}
    scope: float | None = None  # tickets in scope, estimated once for the three sources
    for (searched, id_col, stmt), last in zip(sources, newest, strict=True):
        top = int(last or 0)

        async def newest_matches(window: int | None, order: Any, stmt: Rows = stmt, top: int = top,
                                 id_col: Any = id_col) -> list[Candidate]:
            windowed = stmt if window is None or window >= top else stmt.where(id_col > top - window)
            return await _rows(session, _scoped(windowed, flt, extra).order_by(order).limit(limit))

        first = PG_WINDOWS[0]
        if walk_first[searched]:
            await _settings(session, dict.fromkeys(_WALK_SETTINGS, "off"))
        rows = await newest_matches(first, id_col.desc())
        if walk_first[searched]:
            await _settings(session, dict.fromkeys(_WALK_SETTINGS, "on"))
        if len(rows) >= limit or first is None or first >= top:
            found += rows
            continue
        if narrowed:
            if scope is None:
                scope = await estimated_rows(session, _scoped(select(Ticket.id), flt, extra))
            if scope <= SCOPE_PER_TICKET:
                # `id + 0`: the order cannot come from walking the primary key, so the plan starts from the
                # tickets in scope (or from the word's GIN index, when the word is the rarer of the two).
                found += await newest_matches(None, (id_col + 0).desc())
                continue
            walk = PG_WINDOWS[1]
            if walk is not None and len(rows) * walk >= WALK_MARGIN * limit * first:
                # Nested loops only, no bitmaps: the one plan left is the walk down the primary key, each row's
                # ticket and customer looked up (the planner otherwise hashed or merged a whole tickets table in).
                await _settings(session, dict.fromkeys(_WALK_SETTINGS, "off"))
                rows = await newest_matches(walk, id_col.desc())
                await _settings(session, dict.fromkeys(_WALK_SETTINGS, "on"))
                if len(rows) >= limit or walk >= top:
                    found += rows
                    continue
        # Bitmap scans only beyond the first window.
        await _settings(session, {"enable_indexscan": "off"})
        for window in PG_WINDOWS[1:]:
            rows = await newest_matches(window, (id_col + 0).desc())
            if len(rows) >= limit or window is None or window >= top:
                break
        await _settings(session, {"enable_indexscan": "on"})
        found += rows
    await _settings(session, before)
    return found


SQLITE_RANK_CHARS = 400.0  # a text this long ranks 0.5


async def _sqlite_text(session: AsyncSession, query: SearchQuery, flt: TicketFilter, limit: int,
                       extra: Sequence[ColumnElement[bool]]) -> list[Candidate]:
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
        # A rank of the text alone, in 0..1: the shorter the text holding every word, the closer the match. Not
        # bm25: its collection statistics change with every text written, which would move results between the
        # pages of a search's cursor (PostgreSQL's ts_rank_cd depends on the text alone too).
        text_col: ColumnElement[str] = literal_column(f"{fts}.{SQLITE_FTS[fts][1]}")
        rank = 1.0 / (1.0 + func.length(text_col) / SQLITE_RANK_CHARS)
        stmt: Rows = select(
            ticket_col, literal(source), ref_col if ref_col is not None else literal(None), rank)
        stmt = stmt.select_from(table(fts))
        if source == "subject":
            stmt = stmt.join(Ticket, Ticket.id == rowid)
        else:
            owner = Message if source == "message" else Note
            stmt = stmt.join(owner, owner.id == rowid).join(Ticket, Ticket.id == owner.ticket_id)
        stmt = stmt.where(fts_table.op("MATCH")(match)).order_by(rowid.desc())
        found += await _rows(session, _scoped(stmt, flt, extra).limit(limit))
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
        name_conds = [name_holds(w) for w in name_words]
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
