"""Word forms and word vectors for the embedded engine: Russian lemmas (pymorphy3), English stems (Snowball),
and averaged static Russian word vectors (navec, the model file that ships inside the `natasha` package).

Why: Russian inflects (тариф, тарифа, тарифом, тарифами ...), so a customer's word form is often one the
training data never had; the lemma makes it a known word. Static vectors let a synonym the data never had
(симка / сим-карта) land near its neighbours. Measured per feature with bench/nlu.py (docs in README).

Every analyser is loaded once per process on first use (a parse must not pay for it twice), and lemmas are
cached per token: customer vocabulary is small and repetitive, so the cache answers nearly every lookup.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_CYRILLIC_WORD = re.compile(r"^[\u0400-\u04ff]+$")
_LATIN_WORD = re.compile(r"^[a-z]+$")
LEMMA_CACHE_SIZE = 200_000
NAVEC_FILE = "navec_news_v1_1B_250K_300d_100q.tar"
VECTOR_SIZE = 300

_lock = threading.Lock()
_analysers: dict[str, Any] = {}


def shared(name: str, build: Callable[[], Any]) -> Any:
    """One instance per process of a costly analyser, built on first use (training threads may ask at once)."""
    value = _analysers.get(name)
    if value is None:
        with _lock:
            value = _analysers.get(name)
            if value is None:
                value = _analysers[name] = build()
    return value


def morph_analyser() -> Any:
    """pymorphy3's analyser (Russian), one per process."""
    def build() -> Any:
        import pymorphy3

        return pymorphy3.MorphAnalyzer()

    return shared("morph", build)


def _stemmer() -> Any:
    def build() -> Any:
        import snowballstemmer

        return snowballstemmer.stemmer("english")

    return shared("stem", build)


def navec_path() -> Path | None:
    """Where the navec model that `natasha` ships is, without importing natasha (its import loads models)."""
    spec = importlib.util.find_spec("natasha")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emb" / NAVEC_FILE
    return path if path.is_file() else None


def _navec() -> Any:
    def build() -> Any:
        path = navec_path()
        if path is None:
            raise RuntimeError(f"word vectors need the `natasha` package ({NAVEC_FILE} not found)")
        from navec import Navec

        return Navec.load(str(path))

    return shared("navec", build)


@functools.lru_cache(maxsize=LEMMA_CACHE_SIZE)
def lemma(word: str) -> str:
    """The dictionary form of one lowercase word: pymorphy3 for Cyrillic, a Snowball stem for Latin."""
    if _CYRILLIC_WORD.match(word):
        return str(morph_analyser().parse(word)[0].normal_form).replace("ё", "е")
    if _LATIN_WORD.match(word):
        return str(_stemmer().stemWord(word))
    return word


def lemmatise(text: str) -> str:
    """The words of a normalised text in their dictionary forms, space separated (digits and signs dropped)."""
    return " ".join(lemma(w) for w in _WORD.findall(text))


def lemmatise_cyrillic(text: str) -> str:
    """Like lemmatise, but keeps only the Russian words' lemmas: the English side has its own measurement."""
    return " ".join(lemma(w) for w in _WORD.findall(text) if _CYRILLIC_WORD.match(w))


def stem_latin(text: str) -> str:
    """The Snowball stems of the Latin words only (English): the Russian words have their own lemma block."""
    return " ".join(lemma(w) for w in _WORD.findall(text) if _LATIN_WORD.match(w))


@functools.lru_cache(maxsize=LEMMA_CACHE_SIZE)
def _word_vector(word: str) -> NDArray[np.float32] | None:
    # The lemma's vector first: every form of a word then counts as the same word, as in the lemma block.
    navec = _navec()
    for candidate in (lemma(word), word):
        if candidate in navec:
            vector: NDArray[np.float32] = navec[candidate]
            return vector
    return None


def mean_vector(text: str) -> NDArray[np.float64]:
    """The l2-normalised mean of the Russian words' vectors (zeros when no word is known)."""
    vectors = [v for w in _WORD.findall(text) if _CYRILLIC_WORD.match(w) and (v := _word_vector(w)) is not None]
    if not vectors:
        return np.zeros(VECTOR_SIZE)
    mean: NDArray[np.float64] = np.asarray(np.mean(vectors, axis=0, dtype=np.float64))
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def vectors_available() -> bool:
    """Whether the word-vector model is installed (the `natasha` package)."""
    return navec_path() is not None and importlib.util.find_spec("navec") is not None
