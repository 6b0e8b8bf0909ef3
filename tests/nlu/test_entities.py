"""Entity extraction: formats, normalisation, data-driven patterns, and hostile input."""

from __future__ import annotations

import datetime as dt

import pytest

from nlu.entities import EntityExtractor
from nlu.protocol import TrainingData

TODAY = dt.date(2026, 3, 15)


@pytest.fixture(scope="module")
def extractor(default_data: TrainingData) -> EntityExtractor:
    return EntityExtractor(default_data, today=lambda: TODAY)


def found(extractor: EntityExtractor, text: str) -> list[tuple[str, str]]:
    return [(e.type, e.value) for e in extractor.extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("где мой заказ ORD-123456?", [("order_number", "ORD-123456")]),
        ("where is ord 654321", [("order_number", "ORD-654321")]),
        ("заказ 112233 не пришел", [("order_number", "ORD-112233")]),
        ("order #445566 status", [("order_number", "ORD-445566")]),
        ("zakaz nomer 778899", [("order_number", "ORD-778899")]),
        ("договор № 12345678", [("contract_number", "12345678")]),
        ("contract number 1234567890", [("contract_number", "1234567890")]),
        ("мой телефон +7 (912) 345-67-89", [("phone", "+79123456789")]),
        ("звоните 8 912 345 67 89", [("phone", "+79123456789")]),
        ("номер 89123456789", [("phone", "+79123456789")]),
        ("mail: Ivan.Petrov+tv@Example.COM.", [("email", "ivan.petrov+tv@example.com")]),
        ("списали 1 200,50 руб", [("amount", "1200.50 RUB")]),
        ("сняли 500₽", [("amount", "500 RUB")]),
        ("charged $30 extra", [("amount", "30 USD")]),
        ("bill of 45 rub", [("amount", "45 RUB")]),
        ("оплатил 31.12.2025", [("date", "2025-12-31")]),
        ("paid on 2026-01-05", [("date", "2026-01-05")]),
        ("вчера отключили", [("date", "2026-03-14")]),
        ("since yesterday", [("date", "2026-03-14")]),
        ("сегодня", [("date", "2026-03-15")]),
        ("еду в турцию", [("country", "Turkey")]),
        ("роутер тп-линк", [("router_brand", "TP-Link")]),
        ("31.02.2026 is not a date", []),
        ("просто текст без сущностей", []),
    ],
)
def test_formats(extractor: EntityExtractor, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(extractor, text) == expected


def test_spans_point_at_the_text(extractor: EntityExtractor) -> None:
    text = "Заказ ORD-123456, телефон +7 912 345-67-89, email a@b.ru"
    for entity in extractor.extract(text):
        assert text[entity.start:entity.end] == entity.text


def test_several_entities_in_order(extractor: EntityExtractor) -> None:
    text = "договор 87654321, заказ ORD-000111, вчера списали 300 руб, пишите x@y.com"
    assert [t for t, _ in found(extractor, text)] == ["contract_number", "order_number", "date", "amount", "email"]


def test_phone_digits_are_not_a_contract(extractor: EntityExtractor) -> None:
    assert found(extractor, "+79123456789") == [("phone", "+79123456789")]


@pytest.mark.parametrize(
    "text",
    [
        "",
        " " * 1000,
        "😀" * 5000,
        "Ð·Ð°ÐºÐ°Ð· ORD-12345 Ð½Ðµ Ð¿Ñ€Ð¸ÑˆÐµÐ»",  # mojibake, a 5-digit order number is no order number
        "\x00\x01\x02 \ufffd\ufffd",
        "1" * 100_000,
        "a@" * 50_000,
        "(" * 10_000 + "ORD" * 10_000,
        "+7" * 30_000,
    ],
)
def test_hostile_input_does_not_break(extractor: EntityExtractor, text: str) -> None:
    entities = extractor.extract(text)
    assert all(0 <= e.start < e.end <= len(text) for e in entities)
    assert all(e.type != "order_number" for e in entities)


def test_long_text_is_scanned_only_at_its_start(extractor: EntityExtractor) -> None:
    assert found(extractor, "заказ ORD-123456 " + "x" * 100_000) == [("order_number", "ORD-123456")]
    assert found(extractor, "x" * 100_000 + " ORD-123456") == []


def test_extractor_without_data_uses_builtins_only() -> None:
    assert [e.type for e in EntityExtractor().extract("ORD-123456 в турцию")] == ["order_number"]


def test_a_stored_regex_extraction_cannot_use_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """Rows stored before the console and the importer checked regexes: the extractor leaves out what does not
    compile or would backtrack for ever, says so in the log, and uses the rest."""
    data = TrainingData(examples=[], regexes={"code": ["(a+)+$", "x(", r"\bK-\d{3}\b"]})
    with caplog.at_level("WARNING", logger="nlu.entities"):
        extractor = EntityExtractor(data, today=lambda: TODAY)
    assert [(e.type, e.value) for e in extractor.extract("K-123 " + "a" * 5000 + "b")] == [("code", "K-123")]
    assert sum("not used" in r.getMessage() for r in caplog.records) == 2
