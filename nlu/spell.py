"""Typo correction against a model's own vocabulary, for the embedded engine's parse.

Why: customers type fast ("canecl my contract", "растаргнуть договор", "No srevice at home"). A misspelt word is
unknown to the word n-grams, cut into other pieces by the sentence encoder and kept only in part by the character
n-grams, so a message the model would read correctly spelt falls to a neighbour or under the threshold. At parse
time a word the model has never seen, which is not a dictionary word either, is replaced by the model's most
frequent word one edit away (Damerau-Levenshtein: one letter deleted, added, changed, or two neighbours swapped).

Only the model's vocabulary is a target, so a correction can only make a text more like the training data; a real
word the model does not know ("honey", "клиентом", "Ahmedabad") is never touched: Russian words pymorphy3 knows
and English words of pyspellchecker's English frequency list (160,000 words, names included) are dictionary words.
Measured with bench/nlu.py (`--features` with and without `spelling`) and in the decision records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from nlu.morph import morph_analyser, shared

MIN_WORD = 4
"""Shorter words are left alone: one edit turns too many short words into other words ("form" -> "for")."""
CACHE_SIZE = 50_000
"""Words whose correction is remembered (per model); the cache is emptied when full."""
_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")


def _english_words() -> frozenset[str]:
    def build() -> frozenset[str]:
        from spellchecker import SpellChecker

        # Only the words are kept (about 30 MB per process; the checker object itself holds 40 MB more).
        return frozenset(SpellChecker(language="en", distance=1).word_frequency.dictionary)

    words: frozenset[str] = shared("english_words", build)
    return words


def dictionary_word(word: str) -> bool:
    """Whether a lower-case word is a real word: pymorphy3's dictionary (Russian), pyspellchecker's list (English).

    A word mixing alphabets ("cпасибо" with a Latin c) or written in a third one is not corrected either way: it is
    no dictionary word, and a correction needs a vocabulary word one edit away.
    """
    if _CYRILLIC.search(word):
        return bool(not _LATIN.search(word) and morph_analyser().word_is_known(word))
    if _LATIN.search(word):
        return word in _english_words()
    return True


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def one_edit(a: str, b: str) -> bool:
    """Whether two different words are one Damerau-Levenshtein edit apart (a letter deleted, added, changed, or two
    neighbours swapped)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if a[i + 1:] == b[i + 1:]:
            return True
        return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]
    if len(a) > len(b):
        return a[i + 1:] == b[i:]
    return a[i:] == b[i + 1:]


class Speller:
    """Corrects a features text's unknown, non-dictionary words to the vocabulary's most frequent word one edit away.

    Candidates come from a symmetric-delete index (every vocabulary word under itself and each one-letter deletion),
    so a lookup costs a few dictionary reads; ties go to the lower inverse document frequency (the commoner word).
    Thread-safe: the cache is a plain dict, replaced when full.
    """

    def __init__(self, vocabulary: Mapping[str, int], idf: NDArray[np.float64]) -> None:
        self.rank: dict[str, float] = {term: float(idf[column]) for term, column in vocabulary.items()
                                       if term.isalpha()}
        self.index: dict[str, list[str]] = {}
        for word in self.rank:
            if len(word) < MIN_WORD - 1:
                continue
            for key in _deletes(word) | {word}:
                self.index.setdefault(key, []).append(word)
        self._cache: dict[str, str] = {}

    def word(self, word: str) -> str:
        """The word itself, or its correction."""
        if len(word) < MIN_WORD or word in self.rank or not word.isalpha():
            return word
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        best = word
        if not dictionary_word(word):
            candidates = {c for key in _deletes(word) | {word} for c in self.index.get(key, ()) if one_edit(word, c)}
            if candidates:
                best = min(candidates, key=lambda c: (self.rank[c], c))
        if len(self._cache) >= CACHE_SIZE:
            self._cache = {}
        self._cache[word] = best
        return best

    def text(self, features_text: str) -> str:
        """The features text with its misspelt words corrected."""
        return _WORD.sub(lambda m: self.word(m.group()), features_text)

    @staticmethod
    def warm() -> None:
        """Load the dictionaries now (model load), not in the first parse that meets an unknown word."""
        dictionary_word("warm")
        dictionary_word("прогрев")
