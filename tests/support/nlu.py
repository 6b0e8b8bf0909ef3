"""Checks shared by the NLU tests."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from nlu.embedded import UNKNOWN_WORDS_FACTOR, EmbeddedEngine
from nlu.segment import clean_message


def assert_fast_path_matches(engine: EmbeddedEngine, texts: list[str], *, atol: float = 1e-9) -> None:
    """The fast scorer (what parse uses) gives each text the probabilities of the sklearn path. With a sentence
    encoder block pass atol=1e-6: it computes in float32, and one text alone rounds differently from a batch."""
    loaded = engine._loaded
    assert loaded is not None
    reference = engine.probabilities(loaded.model, texts)
    for text, expected in zip(texts, reference, strict=True):
        scores, known = loaded.scorer.scores(loaded.scorer.features([clean_message(text)])[0])
        probs = softmax(scores * loaded.model.temperature) * (1.0 if known else UNKNOWN_WORDS_FACTOR)
        np.testing.assert_allclose(probs, expected, atol=atol)
