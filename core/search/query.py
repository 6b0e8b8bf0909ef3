"""What a person typed in the search box, parsed once for both databases.

- words: every word must appear in the same text (a message, a subject, a note); Russian and English word
  forms match ("роутер" finds "роутера", "роутером"; "routers" finds "router");
- `"quoted phrase"`: these words, in this order, next to each other;
- `word*`: a prefix ("роут*" finds "роутер", "роутеры");
- identifiers found beside the text: e-mail addresses, phone numbers (any spacing: +7 916 123-45-67), ticket
  numbers (T-000123), order numbers and channel ids (anything mixing letters with digits, like ORD-2024-0001).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer

from core.tickets.models import parse_ticket_number

MAX_TERMS = 12  # more words than anyone types; bounds the query the database gets
_PHRASE = re.compile(r'"([^"]*)"?')
_WORD = re.compile(r"\w+", re.UNICODE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_PHONE = re.compile(r"\+?[\d\s().-]{7,24}")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
MIN_PHONE_DIGITS = 5
MIN_PREFIX_STEM = 3  # a stem shorter than this matches only the whole word (SQLite), not everything it starts


@lru_cache(maxsize=2)
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=65536)  # a snippet stems every word it shows: the same few thousand words, page after page
def stem(word: str) -> str:
    """The Snowball stem of a lower-case word: Russian for Cyrillic words, English for the rest."""
    return str(_stemmer("russian" if _CYRILLIC.search(word) else "english").stemWord(word))


def words_of(text: str) -> list[str]:
    return [w.lower().replace("ё", "е") for w in _WORD.findall(text)]


@dataclass(frozen=True, slots=True)
class Term:
    word: str
    prefix: bool = False  # the person wrote `word*`


@dataclass(frozen=True, slots=True)
class SearchQuery:
    raw: str
    terms: tuple[Term, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    emails: tuple[str, ...] = ()
    phone_digits: str | None = None
    ticket_id: int | None = None
    identifiers: tuple[str, ...] = field(default=())

    @property
    def has_text(self) -> bool:
        return bool(self.terms or self.phrases)

    @property
    def is_empty(self) -> bool:
        return not (self.has_text or self.emails or self.phone_digits or self.ticket_id or self.identifiers)

    def highlight_stems(self) -> tuple[set[str], set[str]]:
        """(stems of whole words, prefixes) a snippet highlights."""
        words = {stem(t.word) for t in self.terms if not t.prefix}
        words |= {stem(w) for phrase in self.phrases for w in phrase}
        words |= {stem(w) for e in self.emails for w in words_of(e)}
        prefixes = {t.word for t in self.terms if t.prefix}
        return words, prefixes


def _is_identifier(token: str) -> bool:
    """A token mixing digits with letters or separators (ORD-2024-0001, A12345, 42-17): an order number or an id."""
    return any(c.isdigit() for c in token) and (any(c.isalpha() for c in token) or "-" in token or "_" in token)


def parse(raw: str) -> SearchQuery:
    text = raw.strip()[:200]
    phrases: list[tuple[str, ...]] = []

    def take_phrase(match: re.Match[str]) -> str:
        words = tuple(words_of(match[1]))
        if len(words) > 1:
            phrases.append(words)
            return " "
        return f" {match[1]} "  # one quoted word is a word

    rest = _PHRASE.sub(take_phrase, text)
    emails = tuple(dict.fromkeys(e.lower() for e in _EMAIL.findall(rest)))
    rest = _EMAIL.sub(" ", rest)
    ticket_id: int | None = None
    identifiers: list[str] = []
    phone_digits: str | None = None
    stripped = rest.strip()
    if stripped and _PHONE.fullmatch(stripped) and len(digits := re.sub(r"\D", "", stripped)) >= MIN_PHONE_DIGITS:
        # The whole query is a phone number (spaces and dashes anywhere): it is not also a list of words.
        phone_digits, rest = digits, ""
    terms: list[Term] = []
    for token in rest.split():
        if (number := parse_ticket_number(token)) is not None:
            ticket_id = number
            continue
        core = token.strip(".,;:!?()[]{}'\"")
        if _is_identifier(core.rstrip("*")):
            identifiers.append(core.rstrip("*").lower())
            continue
        prefix = core.endswith("*")
        words = words_of(core)
        for i, word in enumerate(words):
            terms.append(Term(word, prefix=prefix and i == len(words) - 1))
    return SearchQuery(raw=text, terms=tuple(dict.fromkeys(terms))[:MAX_TERMS], phrases=tuple(phrases[:MAX_TERMS]),
                       emails=emails[:MAX_TERMS], phone_digits=phone_digits, ticket_id=ticket_id,
                       identifiers=tuple(dict.fromkeys(identifiers))[:MAX_TERMS])


def pg_tsquery(query: SearchQuery) -> str | None:
    """The query as `to_tsquery` text: words and phrases ANDed, `:*` on prefixes. Every lexeme is quoted and holds
    word characters only, so nothing the person typed is read as tsquery syntax."""
    parts = [f"'{t.word}':*" if t.prefix else f"'{t.word}'" for t in query.terms]
    parts += ["(" + " <-> ".join(f"'{w}'" for w in phrase) + ")" for phrase in query.phrases]
    parts += [f"'{e}'" for e in query.emails if "'" not in e and "\\" not in e]
    return " & ".join(parts) or None


def fts5_query(query: SearchQuery) -> str | None:
    """The query as an FTS5 expression: each word by its stem as a prefix (the index holds words as written, so
    "роутером" looks for роутер*), phrases as written, e-mails as phrases of their parts; all ANDed."""
    parts: list[str] = []
    for term in query.terms:
        if term.prefix:
            parts.append(f'"{term.word}"*')
            continue
        stemmed = stem(term.word)
        parts.append(f'"{stemmed}"*' if len(stemmed) >= MIN_PREFIX_STEM else f'"{term.word}"')
    parts += ['"' + " ".join(phrase) + '"' for phrase in query.phrases]
    parts += ['"' + " ".join(words_of(e)) + '"' for e in query.emails]
    return " AND ".join(parts) or None
