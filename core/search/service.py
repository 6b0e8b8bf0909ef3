"""Ticket search: ranked tickets for what a person typed, each with the text it matched in, highlighted.

Args of `search`: the TicketFilter (its `query` is the typed text; the other fields filter beside it), a page size
and offset. The result is ordered by relevance (where it matched, how well), then newest first.

Each source (subjects, messages, notes, customers, identifiers) yields at most `CANDIDATES` tickets, newest
first: a word half the messages hold costs a bounded read, and the total then reads "1,000+". Refining the
query or the filters (a queue, a status, a date range) narrows the candidates inside the database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.search import repository
from core.search.query import SearchQuery, parse, stem
from core.search.repository import WEIGHTS, Candidate
from core.tickets import repository as ticket_repository
from core.tickets.models import Ticket
from core.tickets.repository import TicketFilter

CANDIDATES = 1000
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


def highlight(text: str, query: SearchQuery, *, width: int = SNIPPET_CHARS) -> Snippet:
    """The part of `text` around its first matching word, with every matching word's span."""
    text = " ".join(text.split())
    words, prefixes = query.highlight_stems()
    spans: list[tuple[int, int]] = []
    for token in _TOKEN.finditer(text):
        word = token[0].lower().replace("ё", "е")
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


async def search(session: AsyncSession, flt: TicketFilter, *, limit: int, offset: int) -> SearchPage:
    query = parse(flt.query or "")
    if query.is_empty:
        return SearchPage([], {}, 0, False)
    candidates = await repository.text_candidates(session, query, flt, CANDIDATES)
    candidates += await repository.identifier_candidates(session, query, flt, CANDIDATES)
    per_source: dict[str, int] = {}
    for c in candidates:
        per_source[c.source] = per_source.get(c.source, 0) + 1
    capped = any(n >= CANDIDATES for n in per_source.values())
    ranked, best = _rank(candidates)
    page = ranked[offset:offset + limit]
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
    return SearchPage(rows, matches, len(ranked), capped)
