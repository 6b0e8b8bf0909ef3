"""Typo correction (nlu/spell.py): one edit away from the model's own vocabulary, never a real word, and what the
engine makes of it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from nlu import spell
from nlu.embedded import DEFAULT_FEATURES, EmbeddedEngine, speller_of
from nlu.protocol import TrainingData, TrainingExample
from nlu.spell import Speller, dictionary_word, one_edit
from tests.support.nlu import assert_fast_path_matches


def _speller(words: dict[str, float]) -> Speller:
    """A speller over these words, each with the given inverse document frequency (lower: commoner)."""
    vocabulary = {w: i for i, w in enumerate(words)}
    return Speller(vocabulary, np.array(list(words.values())))


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("cancel", "canecl", True),    # neighbours swapped
    ("cancel", "cancl", True),     # a letter left out
    ("cancel", "canceel", True),   # a letter added
    ("cancel", "cancol", True),    # a letter changed
    ("договор", "доогвор", True),
    ("cancel", "cnacle", False),   # two edits
    ("cancel", "cancel", False),   # the same word is no edit
    ("cancel", "can", False),
    ("ab", "ba", True),
])
def test_one_edit(a: str, b: str, expected: bool) -> None:
    assert one_edit(a, b) is expected
    assert one_edit(b, a) is expected


def test_dictionary_words_are_real_words_in_any_form() -> None:
    for word in ("клиентом", "минусе", "сбросить", "ночи", "honey", "arrow", "getting", "ahmedabad"):
        assert dictionary_word(word), word
    for word in ("договр", "растаргнуть", "canecl", "sevrice", "cпасибо"):  # the last has a Latin "c"
        assert not dictionary_word(word), word
    assert dictionary_word("東京")  # a third alphabet: left as it is


def test_unknown_misspelt_words_become_the_commonest_vocabulary_word_one_edit_away() -> None:
    speller = _speller({"cancel": 2.0, "contract": 1.5, "расторгнуть": 2.5, "договор": 1.2})
    assert speller.text("canecl my contarct") == "cancel my contract"
    assert speller.text("растаргнуть доогвор") == "расторгнуть договор"
    # Two candidates one edit away: the commoner (lower idf) wins.
    assert _speller({"tariff": 1.0, "tarif": 3.0}).word("tarifg") == "tariff"
    assert _speller({"tariff": 3.0, "tarif": 1.0}).word("tarifg") == "tarif"
    assert speller.text("hello, world! 12345 cancel_my") == "hello, world! 12345 cancel_my"


def test_real_words_short_words_and_known_words_stay() -> None:
    speller = _speller({"money": 1.0, "клиентам": 1.0, "form": 1.0, "for": 1.0, "cancel": 1.0})
    assert speller.word("honey") == "honey"        # a dictionary word the model does not know
    assert speller.word("клиентом") == "клиентом"  # another form of a known word, itself a real word
    assert speller.word("fro") == "fro"            # shorter than MIN_WORD
    assert speller.word("cancel") == "cancel"
    assert speller.word("zzzzqq") == "zzzzqq"      # nothing one edit away


def test_the_cache_is_replaced_when_full_and_answers_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spell, "CACHE_SIZE", 8)
    speller = _speller({"cancel": 1.0, "contract": 1.0})
    typos = [f"canecl{'x' * i}" for i in range(20)]

    def read() -> None:
        for _ in range(20):
            for word in ("canecl", "contarct", *typos):
                assert speller.word(word) == {"canecl": "cancel", "contarct": "contract"}.get(word, word)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(speller._cache) <= 8


def test_hostile_text_is_corrected_word_by_word_and_stays_text() -> None:
    speller = _speller({"cancel": 1.0})
    text = "canecl\u200b" * 5000 + " \ud800 " + "\x00canecl"
    out = speller.text(text)
    assert out.count("cancel") == 5001
    assert "\ud800" in out


_ROWS = {
    "contract_terminate": ["cancel my contract", "i want to cancel", "cancel the subscription please",
                           "расторгнуть договор", "хочу расторгнуть договор", "как расторгнуть"],
    "contract_info": ["show my contract", "contract details", "what does my contract say",
                      "условия договора", "покажите договор", "мой договор"],
    "balance_check": ["what is my balance", "how much money is on my account", "balance please",
                      "какой у меня баланс", "сколько денег на счету", "проверить баланс"],
}


def _data() -> TrainingData:
    return TrainingData(examples=[TrainingExample(t, intent) for intent, texts in _ROWS.items()
                                  for t in texts for _ in range(3)])


def test_the_engine_reads_a_misspelt_request_as_the_spelt_one(tmp_path: Path) -> None:
    assert "spelling" in DEFAULT_FEATURES
    engine = EmbeddedEngine(tmp_path / "on")
    engine.train_sync(_data())
    for typo, spelt in (("canecl my contarct", "cancel my contract"), ("растаргнуть доогвор", "расторгнуть договор")):
        read, expected = engine.parse_sync(typo), engine.parse_sync(spelt)
        assert read.intent == "contract_terminate"
        assert read.confidence == pytest.approx(expected.confidence)
    assert engine.parse_sync("canecl my contarct").text == "canecl my contarct"  # the customer's words are kept
    assert_fast_path_matches(engine, ["canecl my contarct", "растаргнуть доогвор", "honey", "cancel"], atol=1e-6)
    report = engine.evaluate_sync(TrainingData(examples=[TrainingExample("canecl my contarct", "contract_terminate")]))
    assert report.accuracy == 1.0

    without = EmbeddedEngine(tmp_path / "off", features=[f for f in DEFAULT_FEATURES if f != "spelling"])
    without.train_sync(_data())
    assert without._loaded is not None and without._loaded.scorer.speller is None
    assert without.parse_sync("canecl my contarct").confidence != pytest.approx(
        without.parse_sync("cancel my contract").confidence)


def test_a_model_saved_before_spelling_existed_parses_without_it(tmp_path: Path) -> None:
    engine = EmbeddedEngine(tmp_path)
    engine.train_sync(_data())
    assert engine._loaded is not None
    model = engine._loaded.model
    assert speller_of(model) is not None
    del model.spelling  # what unpickling a model from before the attribute gives
    assert speller_of(model) is None
