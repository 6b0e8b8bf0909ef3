"""The shipped Russian/English telecom data: intents, counts per language, answers."""

from __future__ import annotations

from collections import Counter

import pytest

from nlu.data import load_training_data, split_by_language
from nlu.protocol import TrainingData

REQUIRED_INTENTS = (
    "greeting goodbye thanks human_handoff order_status new_connection internet_down slow_internet "
    "mobile_no_signal tv_not_working billing_question payment_methods balance_check tariff_change tariff_info "
    "roaming contract_terminate contract_info personal_data_change data_deletion complaint office_hours "
    "router_setup"
).split()
FAQ_INTENTS = (
    "greeting goodbye thanks payment_methods tariff_info roaming office_hours router_setup balance_check "
    "contract_info new_connection data_deletion personal_data_change"
).split()
MIN_PER_LANGUAGE = 40


def test_every_required_intent_is_there(default_data: TrainingData) -> None:
    assert set(REQUIRED_INTENTS) <= set(default_data.intents)


def test_loads_without_warnings(default_data: TrainingData) -> None:
    assert load_training_data().warnings == []
    assert default_data.warnings == []


@pytest.mark.parametrize("language", ["ru", "en"])
def test_at_least_40_examples_per_intent_per_language(default_data: TrainingData, language: str) -> None:
    counts = Counter(e.intent for e in split_by_language(default_data)[language])
    short = {i: counts[i] for i in REQUIRED_INTENTS if counts[i] < MIN_PER_LANGUAGE}
    assert short == {}


def test_russian_includes_transliteration_and_typos(default_data: TrainingData) -> None:
    russian = split_by_language(default_data)["ru"]
    latin = [e for e in russian if e.text.isascii()]
    assert len(latin) >= 3 * len(REQUIRED_INTENTS)
    assert {e.intent for e in latin} >= set(REQUIRED_INTENTS) - {"thanks"}
    assert any(e.text == "ne rabotaet internet" for e in latin)


@pytest.mark.parametrize("intent", FAQ_INTENTS)
def test_faq_intents_answer_in_both_languages(default_data: TrainingData, intent: str) -> None:
    answers = default_data.responses[intent]
    assert set(answers) == {"ru", "en"}
    assert any("\u0400" <= ch <= "\u04ff" for ch in answers["ru"])
    assert answers["en"].isascii()


def test_shipped_entity_helpers(default_data: TrainingData) -> None:
    assert "order_number" in default_data.regexes
    assert "country" in default_data.lookups
    assert "турцию" in default_data.synonyms["Turkey"]
