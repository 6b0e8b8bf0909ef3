"""One message catalog for every text a person reads: the console, the bot's own phrases, Telegram, the web chat
(server and widget) and e-mail.

The texts live in gettext catalogs, `locales/<language>/LC_MESSAGES/messages.po`, one per language, with the
language's plural rule in the header (English two forms, Russian three). Message ids are stable keys such as
`inbox.total`; the English catalog holds the English texts (a translation tool's "monolingual" layout with `en` as
the source). Values are written `{name}`; a plural text gets its count as `{n}`.

The `.po` files are read with Babel when a language is first used and kept for the life of the process: no
compiled `.mo` file exists to go stale, and a fresh clone runs as it is. A text missing in Russian falls back to
English, and an unknown key shows as itself (the catalog tests fail on both).

    _ = translator(user.language)
    _("ticket.taken", number="T-000123")          # "You took T-000123."
    _.ngettext("inbox.total", 5)                  # "5 обращений" in Russian
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"

# Telegram and browsers tell a person's language as an IETF tag; these languages' speakers mostly read Russian
# better than English, so they get the Russian texts.
_READ_RUSSIAN = frozenset({"ru", "uk", "be", "kk"})


def normalise(language: str | None) -> str:
    """One of LANGUAGES: the given one if we speak it, else the default."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def language_of_tag(tag: str | None) -> str:
    """An IETF language tag (`ru-RU`, `uk`, `en-GB`) reduced to a language we speak."""
    return "ru" if (tag or "").lower().split("-")[0] in _READ_RUSSIAN else DEFAULT_LANGUAGE


def preferred_language(accept_language: str | None) -> str:
    """The language a browser asks for (`Accept-Language: ru-RU,ru;q=0.9,en;q=0.8`) that we speak best: the
    highest-weighted tag that maps to one of LANGUAGES (en only when asked for, or nothing else matched)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "")[:500].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        base = tag.strip().lower().split("-")[0]
        if base and base != "*" and weight > 0:
            ranked.append((-weight, position, base))
    for _weight, _position, base in sorted(ranked):
        if base in _READ_RUSSIAN:
            return "ru"
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_catalog(language: str) -> Catalog:
    """The parsed `.po` catalog of one language (read from disk on every call; `translator` keeps its own)."""
    with po_path(language).open("rb") as file:
        return read_po(file, locale=language, domain=DOMAIN)


class Translator:
    """The texts of one language: `_(key, **values)` for a text, `_.ngettext(key, n, **values)` for a count."""

    __slots__ = ("_keys", "_translations", "language")

    def __init__(self, language: str, translations: Translations, keys: frozenset[str]) -> None:
        self.language = language
        self._translations = translations
        self._keys = keys

    def __call__(self, key: str, /, **values: Any) -> str:
        text = self._translations.gettext(key)
        return text.format(**values) if values else text

    def ngettext(self, key: str, n: int, /, **values: Any) -> str:
        """The plural form the language's rule picks for `n` (Russian: 1 обращение, 2 обращения, 5 обращений)."""
        return self._translations.ngettext(key, key, n).format(n=n, **values)

    def get(self, key: str, /, **values: Any) -> str | None:
        """The text, or None when the catalog has no such key (for keys made from data, such as a team slug)."""
        return self(key, **values) if key in self._keys else None

    def texts(self, prefix: str) -> dict[str, str]:
        """Every singular text whose key starts with `prefix`, by the rest of its key (the web chat widget's)."""
        return {key[len(prefix):]: self(key) for key in sorted(self._keys) if key.startswith(prefix)
                and self._translations.gettext(key) != key}


def message_key(message: Message) -> str:
    """A catalog entry's key: its msgid, or for a plural entry the singular msgid."""
    return message.id if isinstance(message.id, str) else message.id[0]


def _compile(catalog: Catalog) -> Translations:
    """The catalog as gettext translations, compiled in memory (gettext applies the header's plural rule)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def translator(language: str | None) -> Translator:
    """The translator of a language (an unknown or missing one gets the default's); built once per process."""
    return _translator(normalise(language))


@functools.cache  # keyed by a normalised language only, so a stranger's cookie cannot grow it
def _translator(language: str) -> Translator:
    catalog = load_catalog(language)
    translations = _compile(catalog)
    keys = {key for key in map(message_key, catalog) if key}
    if language != DEFAULT_LANGUAGE:
        fallback = _translator(DEFAULT_LANGUAGE)
        translations.add_fallback(fallback._translations)
        keys |= fallback._keys
    return Translator(language, translations, frozenset(keys))


def all_texts(prefix: str) -> Mapping[str, dict[str, str]]:
    """The texts under `prefix` in every language: {"en": {...}, "ru": {...}}."""
    return {language: translator(language).texts(prefix) for language in LANGUAGES}
