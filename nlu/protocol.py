"""The IntentEngine protocol every NLU engine implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nlu.text import detect_language

OUT_OF_SCOPE = "out_of_scope"
"""The intent of near-domain messages the bot must not answer (other operators' offers, jobs, press, dealers,
equipment resale, chit-chat): trained like any intent, so its examples pull such texts away from the intents they
resemble, but never confident, so a parse that lands on it goes to a person. Admins add examples in the console."""

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
    `requests` are the distinct requests read confidently in the text, the top one first: two or more mean a
    message that asks several things (each sentence or clause scored alone); empty when nothing is sure.
    `language_certain` is False when the text does not tell its language (no words, mixed scripts, only words
    both languages share): the customer's earlier language is the better guess then.
    """

    text: str
    intent: str | None
    confidence: float
    confident: bool
    language: str
    ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    model_version: str | None = None
    requests: tuple[IntentScore, ...] = ()
    language_certain: bool = True

    def entity(self, type_: str) -> Entity | None:
        """First entity of a type, if any."""
        return next((e for e in self.entities if e.type == type_), None)


@dataclass(frozen=True, slots=True)
class ExampleEntity:
    """An entity annotated in a training example (Rasa's `[Moscow](city)` markup): its span in the plain text,
    its type, and what Rasa keeps beside it: a role, a group and a synonym value (None: the annotated text)."""

    start: int
    end: int
    entity: str
    value: str | None = None
    role: str | None = None
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored with the example (keys with no value left out)."""
        out: dict[str, Any] = {"start": self.start, "end": self.end, "entity": self.entity}
        for key in ("value", "role", "group"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ExampleEntity:
        return cls(start=int(raw["start"]), end=int(raw["end"]), entity=str(raw["entity"]),
                   value=raw.get("value"), role=raw.get("role"), group=raw.get("group"))


@dataclass(slots=True)
class TrainingExample:
    """One example: plain text (markup removed), its intent (`group/name` for a retrieval intent), its entity
    annotations and Rasa's per-example metadata. `origin` ("file, line N") is where it was read, for messages."""

    text: str
    intent: str
    entities: tuple[ExampleEntity, ...] = ()
    metadata: dict[str, Any] | None = None
    origin: str | None = field(default=None, compare=False)


@dataclass(slots=True)
class TrainingData:
    """Intent examples plus the extras of Rasa's NLU format and bot responses per intent and language."""

    examples: list[TrainingExample] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    # responses[intent][language] -> answer text
    responses: dict[str, dict[str, str]] = field(default_factory=dict)
    # The second and later variants of a response (Rasa's list under `utter_<intent>`), per intent and language;
    # the first is in `responses`, so what reads one answer per language needs nothing else.
    response_variants: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Rasa's `metadata:` of an intent item, per intent.
    intent_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Problems that did not stop loading (an intent with one example, duplicates dropped, ...).
    warnings: list[str] = field(default_factory=list)
    # What was converted on the way in (Rasa 1.x Markdown, legacy JSON), for the import report.
    conversions: list[str] = field(default_factory=list)

    def add_response(self, intent: str, language: str, text: str) -> None:
        """One more variant of an intent's response in a language (the first one becomes `responses`); a text
        the language has already is not added twice."""
        by_lang = self.responses.setdefault(intent, {})
        if language not in by_lang:
            by_lang[language] = text
        elif text not in self.variants(intent, language):
            self.response_variants.setdefault(intent, {}).setdefault(language, []).append(text)

    def variants(self, intent: str, language: str) -> list[str]:
        """Every variant of an intent's response in a language, first first."""
        first = self.responses.get(intent, {}).get(language)
        return [] if first is None else [first, *self.response_variants.get(intent, {}).get(language, [])]

    @property
    def entity_types(self) -> list[str]:
        return sorted({a.entity for e in self.examples for a in e.entities})

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


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A saved model version and its manifest (created_at, n_examples, intents, threshold, train_seconds, ...)."""

    version: str
    path: Path | None  # where the engine keeps it, when that is a local directory
    manifest: dict[str, Any]
    active: bool = False  # the version the engine's own record names as switched on


@runtime_checkable
class VersionedEngine(IntentEngine, Protocol):
    """An engine that saves every training as a version and switches between saved versions.

    What training jobs, admins' activation and rollback, and the instances' model sync need from an engine.
    Every method is a coroutine: CPU-bound engines run their work in a thread, HTTP engines await their server.
    """

    @property
    def active_version(self) -> str | None:
        """The version this process parses with now (None before any is loaded)."""
        ...

    async def train_version(self, data: TrainingData, progress: ProgressCallback | None = None, *,
                            activate: bool) -> str:
        """Train and save a new version.

        Args:
            data: intents, examples and extras.
            progress: optional callback for progress reports (may be called from another thread).
            activate: switch the new version on here too; False leaves the served model alone (the caller
                switches it on everywhere through the database).

        Returns:
            The new version's identifier.
        """
        ...

    async def holdout_evaluation(self, train: TrainingData, test: TrainingData) -> EvaluationReport | None:
        """Fit a throwaway model on `train` and score it on `test`, leaving the served model alone.

        Returns:
            The report, or None when the engine cannot evaluate without replacing the model it serves.
        """
        ...

    async def saved_versions(self) -> list[ModelVersion]:
        """Every saved version, oldest first, with its manifest."""
        ...

    async def activate_version(self, version: str) -> None:
        """Switch a saved version on here and record it as the engine's active one (kept across restarts).

        Raises:
            ModelNotFoundError: no such version.
        """
        ...

    async def rollback_version(self) -> str:
        """Switch back to the version active before the current one.

        Returns:
            The version now active.

        Raises:
            ModelNotFoundError: there is no earlier version.
        """
        ...

    async def follow_version(self, version: str) -> None:
        """Parse with a saved version from now on, without recording it (another instance switched it on).

        Raises:
            ModelNotFoundError: no such version.
        """
        ...


@dataclass
class EngineHolder:
    """The active NLU engine; swapping `current` hot-swaps the model for every new parse."""

    current: IntentEngine

    def __call__(self) -> IntentEngine:
        return self.current

    @property
    def versioned(self) -> VersionedEngine | None:
        """The engine when it keeps model versions itself, else None (the keyword engine, a test double)."""
        engine = self.current
        return engine if isinstance(engine, VersionedEngine) else None


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
