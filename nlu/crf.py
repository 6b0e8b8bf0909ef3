"""Entities learned from the examples' annotations: a linear-chain CRF over token features (as Rasa's
CRFEntityExtractor), with roles and groups as part of the label, and the synonyms of the data set applied to what
it finds. Trained in the same job as intents; scored per entity type (precision, recall, F1 on exact spans)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pycrfsuite

from nlu.protocol import Entity, ExampleEntity, TrainingExample

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SEP = "\x1f"  # between entity, role and group in a label
MIN_ANNOTATED = 2  # fewer annotated examples teach nothing


def tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _shape(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", re.sub(r"[A-ZА-ЯЁ]", "A", re.sub(r"[a-zа-яё]", "a", re.sub(r"\d", "0", word))))


def _features(words: Sequence[str], i: int) -> list[str]:
    w = words[i]
    low = w.lower()
    out = ["bias", f"w={low}", f"suf3={low[-3:]}", f"suf2={low[-2:]}", f"pre3={low[:3]}", f"shape={_shape(w)}",
           f"title={w[:1].isupper()}", f"digit={w.isdigit()}", f"len={min(len(w), 8)}"]
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(words):
            other = words[j].lower()
            out += [f"{offset}:w={other}", f"{offset}:suf3={other[-3:]}", f"{offset}:title={words[j][:1].isupper()}"]
        else:
            out.append(f"{offset}:edge")
    return out


def _label(entity: ExampleEntity) -> str:
    return _SEP.join((entity.entity, entity.role or "", entity.group or ""))


def _bio(example: TrainingExample) -> tuple[list[str], list[str]]:
    toks = tokens(example.text)
    labels = ["O"] * len(toks)
    for entity in example.entities:
        inside = [k for k, (_, start, end) in enumerate(toks) if start >= entity.start and end <= entity.end]
        for n, k in enumerate(inside):
            if labels[k] == "O":
                labels[k] = ("B-" if n == 0 else "I-") + _label(entity)
    return [t for t, _, _ in toks], labels


# L-BFGS costs ~85 CPU s per fit on hwu64's 9,957 examples (5,750 annotated, 54 entity types): the training job
# fits four times (three folds and the final model). The averaged perceptron, 10 epochs: 9 s, entity micro F1 on
# hwu64's test file 0.726 against 0.736 (measured 2026-11-30, decision record). Small sets keep L-BFGS.
LBFGS_MAX_EXAMPLES = 2_000
PERCEPTRON_EPOCHS = 10


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    entity: str
    role: str | None
    group: str | None


class EntityTagger:
    """A fitted CRF (its model bytes are pickled with the intent model)."""

    def __init__(self, model: bytes, synonyms: dict[str, str]) -> None:
        self.model = model
        self.synonyms = synonyms
        self._tagger: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "synonyms": self.synonyms}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model, self.synonyms, self._tagger = state["model"], state["synonyms"], None

    @classmethod
    def fit(cls, examples: Sequence[TrainingExample], synonyms: dict[str, list[str]] | None = None,
            *, max_iterations: int = 80) -> EntityTagger | None:
        """Train on the examples (all of them: the ones without annotations teach what is not an entity);
        None when fewer than MIN_ANNOTATED examples are annotated. Up to LBFGS_MAX_EXAMPLES examples, L-BFGS with
        elastic-net regularisation (`max_iterations`); above, the averaged perceptron (PERCEPTRON_EPOCHS)."""
        if sum(1 for e in examples if e.entities) < MIN_ANNOTATED:
            return None
        large = len(examples) > LBFGS_MAX_EXAMPLES
        trainer = pycrfsuite.Trainer(algorithm="ap" if large else "lbfgs", verbose=False)
        for example in examples:
            words, labels = _bio(example)
            if words:
                trainer.append([_features(words, i) for i in range(len(words))], labels)
        if large:
            trainer.set_params({"max_iterations": PERCEPTRON_EPOCHS, "feature.possible_transitions": True})
        else:
            trainer.set_params({"c1": 0.1, "c2": 0.05, "max_iterations": max_iterations,
                                "feature.possible_transitions": True})
        handle, path = tempfile.mkstemp(suffix=".crfsuite")
        os.close(handle)
        try:
            trainer.train(path)
            with open(path, "rb") as f:
                model = f.read()
        finally:
            os.unlink(path)
        mapping = {v.casefold(): canonical for canonical, variants in (synonyms or {}).items() for v in variants}
        return cls(model, mapping)

    def _open(self) -> Any:
        if self._tagger is None:
            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(self.model)
            self._tagger = tagger
        return self._tagger

    def spans(self, text: str) -> list[Span]:
        toks = tokens(text)
        if not toks:
            return []
        words = [t for t, _, _ in toks]
        labels = self._open().tag([_features(words, i) for i in range(len(words))])
        out: list[Span] = []
        current: list[Any] | None = None
        for (_, start, end), label in zip(toks, labels, strict=True):
            if label == "O":
                current = None
                continue
            kind, name = label[:1], label[2:]
            if kind == "I" and current is not None and current[3] == name:
                current[1] = end
                continue
            current = [start, end, None, name]
            out.append(current)  # type: ignore[arg-type]
        spans = []
        for start, end, _, name in out:  # type: ignore[misc]
            entity, role, group = name.split(_SEP)
            spans.append(Span(start, end, entity, role or None, group or None))
        return spans

    def extract(self, text: str) -> list[Entity]:
        """The learned entities: type (with its role as `type:role` when it has one), value after synonyms."""
        found = []
        for s in self.spans(text):
            raw = text[s.start:s.end]
            kind = f"{s.entity}:{s.role}" if s.role else s.entity
            found.append(Entity(type=kind, value=self.synonyms.get(raw.casefold(), raw), start=s.start,
                                end=s.end, text=raw))
        return found


def score(truth: Iterable[TrainingExample], predicted: Iterable[list[Span]]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 per entity type on exact spans (role and group must match too), and `micro`."""
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    for example, spans in zip(truth, predicted, strict=True):
        gold = {(e.start, e.end, e.entity, e.role, e.group) for e in example.entities}
        got = {(s.start, s.end, s.entity, s.role, s.group) for s in spans}
        for item in gold & got:
            tp[item[2]] = tp.get(item[2], 0) + 1
        for item in got - gold:
            fp[item[2]] = fp.get(item[2], 0) + 1
        for item in gold - got:
            fn[item[2]] = fn.get(item[2], 0) + 1
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(tp) | set(fp) | set(fn)):
        out[name] = _prf(tp.get(name, 0), fp.get(name, 0), fn.get(name, 0))
    out["micro"] = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return out


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "support": float(tp + fn)}


def cross_validate(examples: Sequence[TrainingExample], synonyms: dict[str, list[str]] | None = None,
                   folds: int = 3) -> dict[str, dict[str, float]] | None:
    """Entity scores of k-fold CRFs (every k-th example held out); None without enough annotations. Above
    LBFGS_MAX_EXAMPLES the first fold alone (a third of thousands of examples is a steady estimate, and the
    training job's time is the cost)."""
    if sum(1 for e in examples if e.entities) < folds * MIN_ANNOTATED:
        return None
    truth: list[TrainingExample] = []
    predicted: list[list[Span]] = []
    for k in range(1 if len(examples) > LBFGS_MAX_EXAMPLES else folds):
        train = [e for i, e in enumerate(examples) if i % folds != k]
        test = [e for i, e in enumerate(examples) if i % folds == k]
        tagger = EntityTagger.fit(train, synonyms)
        truth += test
        predicted += [tagger.spans(e.text) if tagger else [] for e in test]
    return score(truth, predicted)
