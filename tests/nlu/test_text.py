"""Normalisation, language detection and transliteration handling."""

from __future__ import annotations

import pytest

from nlu.text import MAX_TEXT_CHARS, detect_language, detransliterate, normalise, to_features_text


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("не работает интернет", "ru"),
        ("Здравствуйте!", "ru"),
        ("ne rabotaet internet", "ru"),
        ("gde moy zakaz", "ru"),
        ("spasibo bolshoe", "ru"),
        ("my internet is not working", "en"),
        ("internet", "en"),
        ("where is my order ORD-123456", "en"),
        ("thank u", "en"),
        ("Привет, my интернет не work", "ru"),
        ("hello привет", "ru"),
        ("", "ru"),
        ("😀😀", "ru"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_normalise_folds_case_yo_spaces_and_width() -> None:
    assert normalise("  Ёлки\tПАЛКИ  ＡＢＣ ") == "елки палки abc"


def test_normalise_cuts_long_text() -> None:
    assert len(normalise("a" * 1_000_000)) == MAX_TEXT_CHARS


def test_transliteration_is_spelled_in_cyrillic() -> None:
    assert detransliterate("ne rabotaet internet") == "не работает интернет"
    assert detransliterate("pozhaluysta") == "пожалуйста"
    assert to_features_text("ne rabotaet internet") == "ne rabotaet internet не работает интернет"
    assert to_features_text("my internet is down") == "my internet is down"
