"""The bot's phrases, team names and order statuses come from the message catalog in the customer's language."""

from __future__ import annotations

from core.decision.texts import order_status, team_name, text


def test_phrases_in_the_customers_language() -> None:
    assert text("handoff", "ru", ticket="T-000007") == "Соединяю с оператором. Номер вашего обращения: T-000007."
    assert text("handoff", "de", ticket="T-7") == "Connecting you with an operator. Your request number is T-7."
    assert text("talk_to_operator", None) == "Talk to an operator"


def test_team_names_known_and_unknown() -> None:
    assert team_name("billing", "ru") == "биллинг и оплата"
    assert team_name(None, "en") == "support"
    assert team_name("field_engineers", "ru") == "field_engineers"
    assert order_status("Awaiting payment", "ru") == "ожидает оплаты"
