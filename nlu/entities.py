"""Entity extraction: built-in patterns for telecom self-service plus regexes, lookups and synonyms from data.

Formats recognised by the built-in patterns:
- order_number: `ORD-123456` (normalised upper case), or six digits after "заказ"/"order" (-> `ORD-123456`), and
  whatever NluSettings.order_number_pattern describes (`configure_order_pattern`, upper-cased);
- contract_number: eight to ten digits after "договор"/"contract"/"л/с"/"account", or a bare 8-digit number;
- phone: Russian numbers `+7 912 345-67-89`, `8 (912) 3456789`, `79123456789` (-> `+79123456789`);
- email: `name@example.com` (lower-cased);
- amount: `500 руб`, `1 200,50 ₽`, `$30`, `30 usd` (-> `500 RUB`, `1200.50 RUB`, `30 USD`);
- date: `31.12.2026`, `2026-12-31`, `сегодня/вчера/позавчера/today/yesterday` (-> ISO date).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import re._parser as re_parser  # the compiler's own parse tree: what nested_repeat reads
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nlu.protocol import Entity, TrainingData

log = logging.getLogger(__name__)

MAX_ENTITY_TEXT = 5_000
"""Entities are looked for in the first 5,000 characters only: regexes stay linear and fast on huge input."""

_DIGITS = re.compile(r"\D")

_ORDER = re.compile(r"\b(?:ORD|ORDER)[\s\-_#№]?(\d{6})\b", re.IGNORECASE)
_ORDER_CONTEXT = re.compile(
    r"(?:заказ\w*|заявк\w*|ордер\w*|order|zakaz\w*)\s*(?:номер|no\.?|number|nomer|#|№)?\s*[:#№]?\s*(\d{6})\b",
    re.IGNORECASE,
)
_custom_order: re.Pattern[str] | None = None


def configure_order_pattern(pattern: str | None) -> None:
    """The operator's own order-number format (NluSettings.order_number_pattern), for every extractor of the
    process: set once at start-up, before any message is parsed."""
    global _custom_order
    _custom_order = (re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])", re.IGNORECASE) if pattern else None)


_CONTRACT_CONTEXT = re.compile(
    r"(?:договор\w*|контракт\w*|лицев\w*\s+сч[её]т\w*|л/с|contract|agreement|account|dogovor\w*)"
    r"\s*(?:номер|no\.?|number|nomer|#|№)?\s*[:#№]?\s*(\d{8,10})\b",
    re.IGNORECASE,
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+7|8|7)[\s\-]?\(?(\d{3})\)?[\s\-]?(\d{3})[\s\-]?(\d{2})[\s\-]?(\d{2})(?!\d)"
)
_EMAIL = re.compile(r"\b[\w.+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}\b")
_NUMBER = r"(\d{1,3}(?:[ \u00a0]\d{3})+|\d+)(?:[.,](\d{1,2}))?"
_AMOUNT_AFTER = re.compile(
    _NUMBER + r"\s?(₽|руб\w*|р\.|rub\w*|rur|\$|usd|долл\w*|dollars?|€|eur\w*|евро)(?!\w)", re.IGNORECASE
)
_AMOUNT_BEFORE = re.compile(r"(\$|€|₽)\s?" + _NUMBER)
_DATE_DMY = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4}|\d{2})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DATE_WORDS = {
    "позавчера": -2, "вчера": -1, "сегодня": 0, "завтра": 1, "послезавтра": 2,
    "yesterday": -1, "today": 0, "tomorrow": 1,
    "vchera": -1, "segodnya": 0, "zavtra": 1,
}
_DATE_WORD = re.compile(r"(?<!\w)(" + "|".join(_DATE_WORDS) + r")(?!\w)", re.IGNORECASE)

_CURRENCY = {"₽": "RUB", "$": "USD", "€": "EUR"}


def _currency(token: str) -> str:
    t = token.lower()
    if t in _CURRENCY:
        return _CURRENCY[t]
    if t.startswith(("руб", "р.", "rub", "rur")):
        return "RUB"
    if t.startswith(("usd", "долл", "dollar")):
        return "USD"
    return "EUR"


def _amount_value(whole: str, fraction: str | None) -> str:
    digits = _DIGITS.sub("", whole)
    return f"{int(digits)}.{fraction.ljust(2, '0')}" if fraction else str(int(digits))


@dataclass(frozen=True, slots=True)
class _Match:
    type: str
    value: str
    start: int
    end: int


def _finditer(pattern: re.Pattern[str], text: str) -> Iterable[re.Match[str]]:
    return pattern.finditer(text)


_REPEATS = (re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT)


def nested_repeat(pattern: str) -> bool:
    """Whether a repeated part of the regex holds a repeat of variable length, as in `(a+)+`, `(\\w*\\s?)*` or
    `(x{1,9})+`: the shape whose backtracking grows exponentially with the text (`(a+)+$` on 24 a's and a b took
    1.1 s here, each further a doubling it; a 5,000-character message: forever). A simple, documented heuristic,
    not a proof: a repeat of a fixed count inside one (`(\\d{3}-)+`) is allowed; overlapping alternatives under a repeat
    (`(a|aa)+`) are not detected. The pattern must compile."""
    def walk(items: Any, repeated: bool) -> bool:
        for op, av in items:
            if op in _REPEATS:
                low, high, body = av
                if repeated and low != high:
                    return True
                if walk(body, repeated or high > 1):
                    return True
                continue
            for part in av if isinstance(av, tuple | list) else ():
                if isinstance(part, re_parser.SubPattern) and walk(part, repeated):
                    return True
                if isinstance(part, list) and any(isinstance(b, re_parser.SubPattern) and walk(b, repeated)
                                                  for b in part):
                    return True
        return False

    return walk(re_parser.parse(pattern), False)

def regex_problem(pattern: str) -> tuple[str, str] | None:
    """Why a data set's regex cannot be used for extraction, as (reason, message), or None: it must compile, and
    no repeated part may repeat something of variable length (nested_repeat). One rule for the console and API
    (refused), imports (skipped with a warning) and the extractor (skipped, for rows stored before the rule)."""
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return "bad_regex", f"the regex does not compile: {exc}"
    if nested_repeat(pattern):
        return ("nested_repeat", "a repeated part of the regex repeats something of variable length inside, as in "
                "(a+)+: matching such a pattern can take forever on a long message; write it without the nesting, "
                "e.g. a+ for (a+)+")
    return None


class EntityExtractor:
    """Finds entities with built-in patterns plus the regexes, lookups and synonyms of training data."""

    def __init__(self, data: TrainingData | None = None, *, today: Callable[[], dt.date] | None = None) -> None:
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self._custom: list[tuple[str, re.Pattern[str]]] = []
        self._synonyms: dict[str, str] = {}
        if data is not None:
            for name, patterns in data.regexes.items():
                for pattern in patterns:
                    if (problem := regex_problem(pattern)) is not None:
                        log.warning("regex of %r not used: %s", name, problem[1], extra={"pattern": pattern[:200]})
                        continue
                    self._custom.append((name, re.compile(pattern, re.IGNORECASE)))
            for name, values in data.lookups.items():
                words = sorted({v.strip() for v in values if v.strip()}, key=len, reverse=True)
                if words:
                    alternatives = "|".join(re.escape(w) for w in words)
                    self._custom.append((name, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)))
            for canonical, variants in data.synonyms.items():
                for variant in variants:
                    self._synonyms[variant.casefold()] = canonical

    def extract(self, text: str) -> tuple[Entity, ...]:
        """All entities in the text, left to right; overlapping matches keep the earliest, longest one."""
        text = text[:MAX_ENTITY_TEXT]
        found: list[_Match] = []
        for m in _finditer(_ORDER, text):
            found.append(_Match("order_number", f"ORD-{m.group(1)}", m.start(), m.end()))
        for m in _finditer(_ORDER_CONTEXT, text):
            found.append(_Match("order_number", f"ORD-{m.group(1)}", m.start(1), m.end(1)))
        if _custom_order is not None:
            for m in _finditer(_custom_order, text):
                if m.end() > m.start():
                    found.append(_Match("order_number", m.group(0).upper(), m.start(), m.end()))
        for m in _finditer(_CONTRACT_CONTEXT, text):
            found.append(_Match("contract_number", m.group(1), m.start(1), m.end(1)))
        for m in _finditer(_EMAIL, text):
            found.append(_Match("email", m.group(0).lower(), m.start(), m.end()))
        for m in _finditer(_PHONE, text):
            found.append(_Match("phone", "+7" + "".join(m.groups()), m.start(), m.end()))
        for m in _finditer(_AMOUNT_AFTER, text):
            value = _amount_value(m.group(1), m.group(2))
            found.append(_Match("amount", f"{value} {_currency(m.group(3))}", m.start(), m.end()))
        for m in _finditer(_AMOUNT_BEFORE, text):
            value = _amount_value(m.group(2), m.group(3))
            found.append(_Match("amount", f"{value} {_currency(m.group(1))}", m.start(), m.end()))
        found.extend(self._dates(text))
        for name, pattern in self._custom:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    raw = m.group(0)
                    found.append(_Match(name, self._synonyms.get(raw.casefold(), raw), m.start(), m.end()))
        return tuple(
            Entity(type=f.type, value=f.value, start=f.start, end=f.end, text=text[f.start:f.end])
            for f in _resolve_overlaps(found)
        )

    def _dates(self, text: str) -> Iterable[_Match]:
        for m in _DATE_DMY.finditer(text):
            day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if year < 100:
                year += 2000
            date = _safe_date(year, month, day)
            if date is not None:
                yield _Match("date", date.isoformat(), m.start(), m.end())
        for m in _DATE_ISO.finditer(text):
            date = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            if date is not None:
                yield _Match("date", date.isoformat(), m.start(), m.end())
        for m in _DATE_WORD.finditer(text):
            offset = _DATE_WORDS[m.group(1).lower()]
            yield _Match("date", (self._today() + dt.timedelta(days=offset)).isoformat(), m.start(), m.end())


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


# Built-in types win over data-defined ones on the same span, in this order.
_PRIORITY = {"order_number": 0, "email": 1, "phone": 2, "contract_number": 3, "amount": 4, "date": 5}


def _resolve_overlaps(found: list[_Match]) -> list[_Match]:
    ranked = sorted(found, key=lambda f: (_PRIORITY.get(f.type, 9), -(f.end - f.start), f.start))
    kept: list[_Match] = []
    seen: set[tuple[str, str]] = set()
    for f in ranked:
        if any(f.start < k.end and k.start < f.end for k in kept):
            continue
        if (f.type, f.value) in seen:
            continue
        seen.add((f.type, f.value))
        kept.append(f)
    return sorted(kept, key=lambda f: f.start)
