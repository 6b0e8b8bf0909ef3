"""Settings of the NLU component."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

Feature = Literal["lemmas", "stems", "vectors", "sentence", "english_sentence", "universal", "spelling"]
"""Feature blocks beyond word and character n-grams the embedded engine can use (nlu.embedded.FEATURES);
`english_sentence` is `sentence` only for English training data; `universal` is the multilingual Universal Sentence
Encoder; `spelling` corrects typos against the model's vocabulary when it parses (nlu/spell.py)."""


class NluSettings(BaseModel):
    """Which intent engine runs and how sure it must be to answer on its own."""

    engine: Literal["embedded", "rasa", "keyword"] = "embedded"
    target_precision: float = Field(default=0.95, gt=0, le=1)
    features: tuple[Feature, ...] | None = Field(
        default=None,
        description="The embedded engine's feature blocks besides word and character n-grams (nlu.embedded.FEATURES; "
                    "`vectors` needs the `vectors` extra; `sentence` always adds WordLlama sentence vectors, "
                    "`english_sentence` only when the training data is English; `universal` adds the multilingual "
                    "Universal Sentence Encoder's vectors; `spelling` corrects typos against the model's vocabulary "
                    "when it parses); unset: the engine's default (lemmas, english_sentence, universal, spelling). "
                    "Applies to the next training; a saved model keeps the blocks it was trained with.")
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = Field(default=10.0, gt=0)
    # DIET's confidence is not calibrated like the embedded engine's, so Rasa gets a fixed threshold.
    rasa_threshold: float = Field(default=0.7, ge=0, le=1)
    order_number_pattern: str | None = Field(
        default=None, max_length=200,
        description="A regular expression for the operator's own order numbers (e.g. `ORD-\\d{3,8}`), found "
                    "besides the built-in six digits; matched case-insensitively as a whole word, kept upper-case.")

    @field_validator("order_number_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"order_number_pattern is not a regular expression: {exc}") from None
        if compiled.match(""):
            raise ValueError("order_number_pattern matches the empty text")
        return value
