"""The message catalog: both .po files parse, hold the same keys with every plural form, and agree on placeholders."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.plurals import get_plural

import core.i18n
from core.i18n import LANGUAGES, language_of_tag, load_catalog, message_key, translator

FORMS = {"en": 2, "ru": 3}


def entries(catalog: Catalog) -> dict[str, Message]:
    return {message_key(m): m for m in catalog if m.id}


def forms(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def fields(text: str) -> set[str]:
    """The `{name}` placeholders of a text (a stray brace fails the parse)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_the_po_files_parse_with_the_languages_plural_rule() -> None:
    assert set(FORMS) == set(LANGUAGES)
    for language in LANGUAGES:
        catalog = load_catalog(language)
        assert str(catalog.locale) == language
        assert catalog.num_plurals == FORMS[language] == get_plural(language).num_plurals
        assert not catalog.obsolete
        assert [message_key(m) for m in catalog if m.id and m.fuzzy] == []
        assert len(entries(catalog)) > 300


def test_every_key_in_both_languages_with_all_plural_forms() -> None:
    catalogs = {language: entries(load_catalog(language)) for language in LANGUAGES}
    assert set(catalogs["en"]) == set(catalogs["ru"])
    plural_keys = set()
    for key in catalogs["en"]:
        kinds = {language: catalogs[language][key].pluralizable for language in LANGUAGES}
        assert len(set(kinds.values())) == 1, (key, kinds)
        for language in LANGUAGES:
            message = catalogs[language][key]
            texts = forms(message)
            if message.pluralizable:
                plural_keys.add(key)
                assert message.id == (key, key), key
                assert len(texts) == FORMS[language], (language, key)
            assert all(text.strip() for text in texts), (language, key)
    assert {"inbox.total", "delivery.attempts", "intents.examples_added"} <= plural_keys


def test_every_translation_has_the_english_placeholders() -> None:
    english = entries(load_catalog("en"))
    for language in LANGUAGES:
        for key, message in entries(load_catalog(language)).items():
            expected = set().union(*(fields(text) for text in forms(english[key])))
            for text in forms(message):
                assert fields(text) <= expected, (language, key, text)
            if message.pluralizable:
                # The count may be left out of a form ("one" reads as a word in some languages), never all of them.
                assert "n" in set().union(*(fields(text) for text in forms(message))), (language, key)
            else:
                assert set().union(*(fields(text) for text in forms(message))) == expected, (language, key)


def test_russian_plural_forms() -> None:
    ru = translator("ru")
    assert [ru.ngettext("inbox.total", n) for n in (1, 2, 5, 11, 21, 22, 25)] == [
        "1 обращение", "2 обращения", "5 обращений", "11 обращений", "21 обращение", "22 обращения", "25 обращений"]
    assert [ru.ngettext("delivery.attempts", n) for n in (0, 1, 3, 12, 14, 101, 104, 111)] == [
        "0 попыток", "1 попытка", "3 попытки", "12 попыток", "14 попыток", "101 попытка", "104 попытки",
        "111 попыток"]
    assert ru.ngettext("intents.examples_added", 21) == "Добавлен 21 пример."
    assert ru.ngettext("user.waiting_until", 3, at="14:05") == "3 неудачные попытки; ждёт до 14:05 UTC"


def test_english_plural_forms_and_values() -> None:
    en = translator("en")
    assert [en.ngettext("inbox.total", n) for n in (0, 1, 2, 21)] == [
        "0 tickets", "1 ticket", "2 tickets", "21 tickets"]
    assert en("ticket.taken", number="T-000123") == "You took T-000123."
    assert en.ngettext("intents.too_long", 1, line=3) == "Example 3 is longer than 1 character."


def test_languages_keys_and_tags() -> None:
    assert translator("ru")("nav.inbox") == "Входящие"
    assert translator("xx") is translator(None) is translator("en")
    assert translator("xx")("nav.inbox") == "Inbox"
    assert translator("ru")("no.such.key") == "no.such.key"
    assert translator("ru").get("no.such.key") is None
    assert translator("ru").get("team.billing") == "биллинг и оплата"
    assert translator("en").texts("widget.")["send"] == "Send"
    assert [language_of_tag(t) for t in ("ru-RU", "uk", "be", "kk", "en-GB", "de", "", None)] == [
        "ru", "ru", "ru", "ru", "en", "en", "en", "en"]


@pytest.fixture
def locales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A catalog of our own in place of the shipped one (the translators are rebuilt before and after)."""
    monkeypatch.setattr(core.i18n, "LOCALES_DIR", tmp_path)
    core.i18n._translator.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    core.i18n._translator.cache_clear()


def write_po(root: Path, language: str, plural_forms: str, body: str) -> None:
    path = root / language / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True)
    path.write_text(f'msgid ""\nmsgstr ""\n"Language: {language}\\n"\n"Plural-Forms: {plural_forms}\\n"\n'
                    f'"Content-Type: text/plain; charset=utf-8\\n"\n\n{body}', encoding="utf-8")


def test_a_text_missing_in_russian_falls_back_to_english(locales: Path) -> None:
    write_po(locales, "en", "nplurals=2; plural=(n != 1);",
             'msgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr "B {x}"\n\n'
             'msgid "c"\nmsgid_plural "c"\nmsgstr[0] "{n} cat"\nmsgstr[1] "{n} cats"\n')
    write_po(locales, "ru", "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
             "(n%100<10 || n%100>=20) ? 1 : 2);",
             'msgid "a"\nmsgstr "А"\n\nmsgid "b"\nmsgstr ""\n\nmsgid "c"\nmsgid_plural "c"\n'
             'msgstr[0] "{n} кот"\nmsgstr[1] "{n} кота"\nmsgstr[2] "{n} котов"\n')
    ru = translator("ru")
    assert ru("a") == "А"
    assert ru("b", x=1) == "B 1"
    assert [ru.ngettext("c", n) for n in (1, 3, 7)] == ["1 кот", "3 кота", "7 котов"]
    assert ru.get("b") == "B {x}"
