"""Lemmas and word vectors: Russian word forms meet their dictionary form, and the engine uses both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlu.embedded import EmbeddedEngine
from nlu.morph import lemma, lemmatise, lemmatise_cyrillic, mean_vector, stem_latin, vectors_available
from nlu.protocol import TrainingData, TrainingExample
from tests.support.nlu import assert_fast_path_matches


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("тарифами", "тариф"), ("тарифа", "тариф"), ("роутера", "роутер"), ("договору", "договор"),
        ("подключили", "подключить"), ("работает", "работать"), ("счетов", "счет"), ("ёлками", "елка"),
        ("симку", "симка"), ("оплатила", "оплатить"),
    ],
)
def test_russian_word_forms_become_their_lemma(form: str, expected: str) -> None:
    assert lemma(form) == expected


def test_english_words_are_stemmed_and_other_tokens_kept() -> None:
    assert lemma("charges") == lemma("charged") == "charg"
    assert lemma("4g") == "4g"


def test_lemmatised_text_keeps_words_only_and_the_russian_variant_only_russian() -> None:
    assert lemmatise("не работает роутер 5 лет") == "не работать роутер год"
    assert lemmatise_cyrillic("мой router не работает") == "мой не работать"


def test_the_english_stem_block_reads_latin_words_only() -> None:
    assert stem_latin("my bills were charged twice, мой счет") == "my bill were charg twice"
    assert stem_latin("не работает 5 лет") == ""


def test_the_stem_block_is_built_only_for_english_data_and_scores_the_same_on_the_fast_path(tmp_path: Path) -> None:
    english = [(f"{t} {i}", intent) for i in range(6) for t, intent in (
        ("my internet is not working", "internet_down"), ("the connection dropped", "internet_down"),
        ("how much are your plans", "tariff_info"), ("which tariffs do you offer", "tariff_info"),
        ("where is my order", "order_status"), ("when will the router be delivered", "order_status"))]
    engine = EmbeddedEngine(tmp_path / "en", features=("lemmas", "stems"))
    engine.train_sync(TrainingData(examples=[TrainingExample(t, i) for t, i in english]))
    loaded = engine._loaded
    assert loaded is not None
    # No Russian in the data: no lemma block; English: the stem block.
    assert [name for name, _ in loaded.model.vectorizer.transformer_list] == ["words", "chars", "stems"]
    texts = ["internet stopped working", "offering tariffs?", "orders delivered when"]
    assert_fast_path_matches(engine, texts)
    assert engine.parse_sync("the plans you offer").intent == "tariff_info"
    russian = EmbeddedEngine(tmp_path / "ru", features=("lemmas", "stems"))
    russian.train_sync(TrainingData(examples=[TrainingExample(f"{t} {i}", n) for i in range(6) for t, n in (
        ("не работает интернет", "internet_down"), ("какие у вас тарифы", "tariff_info"))]))
    assert russian._loaded is not None
    assert [name for name, _ in russian._loaded.model.vectorizer.transformer_list] == ["words", "chars", "lemmas"]


def test_the_lemma_cache_answers_repeated_words() -> None:
    lemma.cache_clear()
    for _ in range(3):
        lemma("тарифами")
    info = lemma.cache_info()
    assert (info.misses, info.hits) == (1, 2)


@pytest.mark.skipif(not vectors_available(), reason="the natasha package (navec model) is not installed")
def test_word_vectors_of_word_forms_and_synonyms_are_close() -> None:
    tariff, tariffs = mean_vector("тариф"), mean_vector("тарифами")
    assert np.isclose(np.linalg.norm(tariff), 1.0)
    assert np.allclose(tariff, tariffs)  # one lemma, one vector
    router, synonym, unrelated = mean_vector("роутер"), mean_vector("маршрутизатором"), mean_vector("погода")
    assert float(router @ synonym) > 0.5 > float(router @ unrelated)


@pytest.mark.skipif(not vectors_available(), reason="the natasha package (navec model) is not installed")
def test_a_text_without_russian_words_has_no_vector() -> None:
    assert not mean_vector("my internet is down 123").any()


@pytest.mark.skipif(not vectors_available(), reason="the natasha package (navec model) is not installed")
def test_a_model_with_the_vector_block_scores_the_same_on_the_fast_path(tmp_path: Path) -> None:
    rows = [(f"{t} {i}", intent) for i in range(6) for t, intent in (
        ("не работает интернет", "internet_down"), ("пропал интернет дома", "internet_down"),
        ("сколько стоит тариф", "tariff_info"), ("какие у вас тарифы", "tariff_info"),
        ("где мой заказ", "order_status"), ("когда привезут роутер", "order_status"))]
    engine = EmbeddedEngine(tmp_path, features=("lemmas", "vectors"))
    engine.train_sync(TrainingData(examples=[TrainingExample(t, i) for t, i in rows]))
    loaded = engine._loaded
    assert loaded is not None
    assert [name for name, _ in loaded.model.vectorizer.transformer_list] == ["words", "chars", "lemmas", "vectors"]
    texts = ["интернета нет", "тарифами интересуюсь", "заказанный маршрутизатор не привезли"]
    assert_fast_path_matches(engine, texts)
    assert engine.parse_sync("тарифами интересуюсь").intent == "tariff_info"
