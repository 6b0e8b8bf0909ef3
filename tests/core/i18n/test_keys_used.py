"""Every text the code asks for is in the catalog, as a plural text exactly where the code passes a count."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from babel.messages.extract import extract_python
from jinja2.ext import babel_extract

from core.i18n import load_catalog, message_key

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("api", "channels", "core")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1,)}
# `translator(language)("key", ...)` and keys written out where they are chosen (the web chat's notices).
CALLED = re.compile(r"""\)\(\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""")
# (`bot.`, `team.` and `order_status.` keys are made from data in core/decision/texts.py, checked below.)
PREFIXED = re.compile(r"""["']((?:telegram|webchat|email)\.[a-z_]+)["']""")


def catalog() -> dict[str, bool]:
    """key -> is it a plural text."""
    return {message_key(m): m.pluralizable for m in load_catalog("en") if m.id}


def used() -> Iterator[tuple[str, str, bool | None]]:
    """(where, key, plural?) for every literal key in the code; None where the call does not tell."""
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            where = str(path.relative_to(ROOT))
            with path.open("rb") as file:
                for line, func, message, _ in extract_python(file, KEYWORDS, [], {}):
                    key = message[0] if isinstance(message, tuple) else message
                    if isinstance(key, str) and not key.endswith("."):  # "role." ~ value: the enum test's
                        yield f"{where}:{line}", key, func == "ngettext"
            source = path.read_text(encoding="utf-8")
            for pattern in (CALLED, PREFIXED):
                for match in pattern.finditer(source):
                    yield where, match.group(1), None
        for path in sorted((ROOT / top).rglob("templates/*.html")):
            with path.open("rb") as file:
                for line, func, message, _ in babel_extract(file, tuple(KEYWORDS), [], {}):
                    key = message[0] if isinstance(message, tuple) else message
                    if isinstance(key, str) and not key.endswith("."):
                        yield f"{path.relative_to(ROOT)}:{line}", key, func == "ngettext"


def test_every_literal_key_is_in_the_catalog_as_the_right_kind() -> None:
    known = catalog()
    found = list(used())
    assert len(found) > 300
    assert {key for _, key, _ in found} >= {"inbox.total", "telegram.start", "webchat.offline_hours", "email.subject"}
    missing = sorted({(where, key) for where, key, _ in found if key not in known})
    assert missing == []
    wrong_kind = sorted((where, key) for where, key, plural in found if plural is not None and known[key] != plural)
    assert wrong_kind == []


def test_the_bots_phrases_and_the_widgets_texts_are_in_the_catalog() -> None:
    known = catalog()
    policy = (ROOT / "core" / "decision" / "policy.py").read_text(encoding="utf-8")
    replies = set(re.findall(r'reply_key="([a-z_]+)"', policy)) | {"talk_to_operator"}
    assert len(replies) >= 5
    assert sorted(k for k in replies if f"bot.{k}" not in known) == []
    widget = (ROOT / "channels" / "webchat" / "static" / "widget.js").read_text(encoding="utf-8")
    names = set(re.findall(r"\bT\.([a-z_]+)", widget))
    assert {"hello", "busy", "agent"} <= names
    assert sorted(n for n in names if f"widget.{n}" not in known) == []
