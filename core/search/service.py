"""Ticket search: ranked tickets for what a person typed, each with the text it matched in, highlighted.

Args of `search`: the TicketFilter (its `query` is the typed text; the other fields filter beside it), a page size
and offset. The result is ordered by relevance (where it matched, how well), then newest first.

Each source (subjects, messages, notes, customers, identifiers) yields at most `CANDIDATES` tickets, newest
first: a word half the messages hold costs a bounded read, and the total then reads "1,000+" ("200+" with filters
beside the words: `NARROWED_CANDIDATES`). Refining the query or the filters (a queue, a status, a date range)
narrows the candidates inside the database.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from core.search import repository
from core.search.query import SearchQuery, parse, stem
from core.search.repository import WEIGHTS, Candidate
from core.tickets import repository as ticket_repository
from core.tickets.models import Ticket
from core.tickets.repository import TicketFilter

CANDIDATES = 1000
# The split reading (one word in the customer's name, the rest in a text) is a narrower question with a rarer answer:
# its newest 200 per source are what a person pages through, and finding 1,000 of a common word among a common
# surname's tickets meant walking 100,000+ messages (seconds at 1,000,000 tickets, bench/scale.py).
NAME_CANDIDATES = 200
# The same for a search narrowed by filters beside the words (every console inbox view filters by status): the
# newest 200 matches per source within the filters are ranked. Finding 1,000 of a common word among the 20,000
# active tickets of a year meant reading each source's newest rows until 1,000 fell in scope, and a source with
# fewer in scope (notes) read twice: 400-800 ms for the console's search page at 1,000,000 tickets.
NARROWED_CANDIDATES = 200
SNIPPET_CHARS = 180
_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Snippet:
    """A piece of the matched text and the spans (start, end) of the words that matched in it."""

    text: str
    spans: tuple[tuple[int, int], ...]

    def segments(self) -> list[tuple[str, bool]]:
        """The text cut at the spans: (piece, highlighted). Templates escape each piece."""
        out: list[tuple[str, bool]] = []
        pos = 0
        for start, end in self.spans:
            if start > pos:
                out.append((self.text[pos:start], False))
            out.append((self.text[start:end], True))
            pos = end
        if pos < len(self.text):
            out.append((self.text[pos:], False))
        return out


@dataclass(frozen=True, slots=True)
class SearchMatch:
    ticket_id: int
    score: float
    source: str  # subject, message, note, customer, email, phone, identity, order, ticket
    ref_id: int | None  # the message or note
    snippet: Snippet | None


@dataclass(frozen=True, slots=True)
class SearchPage:
    tickets: Sequence[Ticket]
    matches: dict[int, SearchMatch]
    total: int
    total_is_capped: bool  # more tickets match than were looked at: the total is a lower bound
    next_after: tuple[float, int] | None = None  # (score, ticket id) of the page's last ticket when more follow


def highlight(text: str, query: SearchQuery, *, width: int = SNIPPET_CHARS) -> Snippet:
    """The part of `text` around its first matching word, with every matching word's span."""
    text = " ".join(text.split())
    words, prefixes = query.highlight_stems()
    # A stem keeps its word's first letter: words starting otherwise are not stemmed at all (most of a text).
    firsts = {w[0] for w in words if w} | {p[0] for p in prefixes if p}
    spans: list[tuple[int, int]] = []
    for token in _TOKEN.finditer(text):
        if spans and token.start() > spans[0][0] + width:
            break  # beyond the piece shown (which starts at most width // 3 before the first match)
        word = token[0].lower().replace("ё", "е")
        if word[0] not in firsts:
            continue
        if stem(word) in words or any(word.startswith(p) for p in prefixes) or word in words:
            spans.append(token.span())
    if len(text) <= width:
        return Snippet(text, tuple(spans))
    start = max(0, (spans[0][0] if spans else 0) - width // 3)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = text[start:start + width]
    lead = "…" if start > 0 else ""
    tail = "…" if start + width < len(text) else ""
    shift = len(lead) - start
    inside = tuple((a + shift, b + shift) for a, b in spans if a >= start and b <= start + width)
    return Snippet(lead + piece + tail, inside)


def _rank(candidates: Sequence[Candidate]) -> tuple[list[tuple[int, float]], dict[int, Candidate]]:
    """Tickets by score (the best match of each source, weighted, summed over sources), and each one's best match."""
    per_source: dict[tuple[int, str], float] = {}
    best: dict[int, tuple[float, Candidate]] = {}
    for c in candidates:
        weighted = WEIGHTS[c.source] * (0.5 + c.score)
        key = (c.ticket_id, c.source)
        if weighted > per_source.get(key, 0.0):
            per_source[key] = weighted
        if c.ticket_id not in best or weighted > best[c.ticket_id][0]:
            best[c.ticket_id] = (weighted, c)
    totals: dict[int, float] = {}
    for (ticket_id, _source), weighted in per_source.items():
        totals[ticket_id] = totals.get(ticket_id, 0.0) + weighted
    ranked = sorted(totals.items(), key=lambda item: (-item[1], -item[0]))
    return ranked, {ticket_id: c for ticket_id, (_w, c) in best.items()}


def _snippet(ticket: Ticket, best: Candidate, query: SearchQuery, texts: tuple[dict[int, str], dict[int, str]]
             ) -> Snippet | None:
    messages, notes = texts
    if best.source == "message" and best.ref_id in messages:
        return highlight(messages[best.ref_id], query)
    if best.source == "note" and best.ref_id in notes:
        return highlight(notes[best.ref_id], query)
    if best.source == "subject":
        return highlight(ticket.subject, query)
    customer = ticket.customer
    if best.source in ("customer", "email", "phone", "identity"):
        shown = " · ".join(v for v in (customer.name, customer.email, customer.phone) if v)
        snippet = highlight(shown, query)
        if query.phone_digits and customer.phone and not snippet.spans:
            return Snippet(shown, ((shown.index(customer.phone), shown.index(customer.phone) + len(customer.phone)),))
        return snippet
    if best.source == "ticket":
        return Snippet(ticket.number, ((0, len(ticket.number)),))
    return None


MAX_SPLIT_TERMS = 4  # a query of more words is not tried word by word against the customers' names


async def _name_and_text(session: AsyncSession, query: SearchQuery, flt: TicketFilter
                         ) -> tuple[list[Candidate], bool]:
    """Tickets where one word of the query is in the customer's name and the others are in one of the ticket's
    texts ("роутер Котов": the message says роутер, the customer is Котова). Each word is tried as the name (those
    no customer's name holds cost one indexed look-up); a match counts as a text match plus a name match. Returns
    the candidates and whether a source was cut at NAME_CANDIDATES (then the total is a lower bound)."""
    words = len(query.terms) + len(query.phrases)
    if query.identifiers or query.emails or query.phone_digits or words < 2 or len(query.terms) > MAX_SPLIT_TERMS:
        return [], False
    found: list[Candidate] = []
    capped = False
    for term in query.terms:
        if term.prefix or not await repository.some_customer_named(session, term.word):
            continue
        rest = replace(query, terms=tuple(t for t in query.terms if t != term))
        rows = await repository.text_candidates(session, rest, flt, NAME_CANDIDATES,
                                                [repository.name_holds(term.word)])
        found += [c for row in rows for c in (row, Candidate(row.ticket_id, "customer", None, 1.0))]
        capped = capped or max(Counter(row.source for row in rows).values(), default=0) >= NAME_CANDIDATES
    return found, capped


async def search(session: AsyncSession, flt: TicketFilter, *, limit: int, offset: int = 0,
                 after: tuple[float, int] | None = None) -> SearchPage:
    """A page of ranked results: the `limit` after `offset`, or after the (score, ticket id) of the previous page's
    last ticket (`after`: a cursor, which new tickets never make skip or repeat a result, as long as each source
    stays within its CANDIDATES)."""
    query = parse(flt.query or "")
    if query.is_empty:
        return SearchPage([], {}, 0, False)
    per_source_limit = NARROWED_CANDIDATES if repository.narrows(flt) else CANDIDATES
    candidates = await repository.text_candidates(session, query, flt, per_source_limit)
    candidates += await repository.identifier_candidates(session, query, flt, per_source_limit)
    per_source: dict[str, int] = {}
    for c in candidates:
        per_source[c.source] = per_source.get(c.source, 0) + 1
    capped = any(n >= per_source_limit for n in per_source.values())
    split, split_capped = await _name_and_text(session, query, flt)
    candidates += split
    capped = capped or split_capped
    ranked, best = _rank(candidates)
    total = len(ranked)
    if after is not None:  # the order is (score descending, id descending)
        ranked = [(t, score) for t, score in ranked if (-score, -t) > (-after[0], -after[1])]
    page = ranked[offset:offset + limit]
    next_after = (page[-1][1], page[-1][0]) if page and len(ranked) > offset + limit else None
    tickets = {t.id: t for t in await ticket_repository.get_many(session, [tid for tid, _ in page])}
    texts = await repository.texts_of(session, [best[tid] for tid, _ in page])
    rows: list[Ticket] = []
    matches: dict[int, SearchMatch] = {}
    for ticket_id, score in page:
        ticket = tickets.get(ticket_id)
        if ticket is None:
            continue
        rows.append(ticket)
        b = best[ticket_id]
        matches[ticket_id] = SearchMatch(ticket_id, round(score, 4), b.source, b.ref_id,
                                         _snippet(ticket, b, query, texts))
    return SearchPage(rows, matches, total, capped, next_after)
