"""The IntentEngine protocol every NLU engine implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from nlu.text import detect_language

ProgressCallback = Callable[[float, str], None]
"""Called with (fraction done in [0, 1], human-readable stage) during long jobs."""


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity found in a text: type (order_number, phone, ...), normalised value and character span."""

    type: str
    value: str
    start: int
    end: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Parse:
    """The engine's reading of one text.

    `intent` is the top intent (None when the text is empty or nothing fits); `confident` says whether the
    engine's calibrated confidence clears the threshold chosen for the target precision of automatic answers.
    """

    text: str
    intent: str | None
    confidence: float
    confident: bool
    language: str
    ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    model_version: str | None = None

    def entity(self, type_: str) -> Entity | None:
        """First entity of a type, if any."""
        return next((e for e in self.entities if e.type == type_), None)


@dataclass(slots=True)
class TrainingExample:
    text: str
    intent: str


@dataclass(slots=True)
class TrainingData:
    """Intent examples plus the extras of Rasa's NLU format and bot responses per intent and language."""

    examples: list[TrainingExample] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    # responses[intent][language] -> answer text
    responses: dict[str, dict[str, str]] = field(default_factory=dict)
    # Problems that did not stop loading (an intent with one example, duplicates dropped, ...).
    warnings: list[str] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    accuracy: float
    macro_f1: float
    per_intent: dict[str, dict[str, float]]  # intent -> {"precision", "recall", "f1", "support"}
    confused_pairs: list[tuple[str, str, int]]  # (true, predicted, count), most confused first
    oos_recall: float | None = None
    answered_precision: float | None = None
    n_examples: int = 0


@runtime_checkable
class IntentEngine(Protocol):
    """An NLU engine: trains on TrainingData, parses texts, evaluates itself."""

    name: str

    async def train(self, data: TrainingData, progress: ProgressCallback | None = None) -> str:
        """Train a new model and make it active.

        Args:
            data: intents, examples and extras.
            progress: optional callback for progress reports.

        Returns:
            The new model version identifier.
        """
        ...

    async def parse(self, text: str) -> Parse:
        """Classify one text with the active model.

        Args:
            text: the customer's message, any length, any script.

        Returns:
            The parse; `intent=None, confident=False` when no model is loaded or the text is empty.
        """
        ...

    async def evaluate(self, data: TrainingData) -> EvaluationReport:
        """Score the active model on labelled data.

        Args:
            data: held-out examples.

        Returns:
            Accuracy, macro-F1, per-intent scores and the most confused pairs.
        """
        ...


class KeywordEngine:
    """A deterministic engine for tests and development: an intent matches when one of its keywords occurs."""

    name = "keyword"

    def __init__(self, keywords: dict[str, list[str]] | None = None) -> None:
        self.keywords = keywords or {}

    async def train(self, data: TrainingData, progress: ProgressCallback | None = None) -> str:
        self.keywords = {}
        for ex in data.examples:
            self.keywords.setdefault(ex.intent, []).append(ex.text.lower())
        if progress:
            progress(1.0, "done")
        return "keyword-1"

    async def parse(self, text: str) -> Parse:
        lowered = text.lower()
        language = detect_language(text, default="en")
        for intent, words in self.keywords.items():
            if any(w in lowered for w in words):
                return Parse(text=text, intent=intent, confidence=1.0, confident=True, language=language,
                             ranking=(IntentScore(intent, 1.0),), model_version="keyword-1")
        return Parse(text=text, intent=None, confidence=0.0, confident=False, language=language)

    async def evaluate(self, data: TrainingData) -> EvaluationReport:
        correct = 0
        for ex in data.examples:
            if (await self.parse(ex.text)).intent == ex.intent:
                correct += 1
        acc = correct / len(data.examples) if data.examples else 0.0
        return EvaluationReport(accuracy=acc, macro_f1=acc, per_intent={}, confused_pairs=[],
                                n_examples=len(data.examples))
