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


_OFFSETS = (-2, -1, 1, 2)
_EDGES = tuple(f"{offset}:edge" for offset in _OFFSETS)
_WordFeatures = tuple[tuple[str, ...], ...]


def _word_features(w: str) -> _WordFeatures:
    """A word's own features, then the ones it gives its neighbours at each of _OFFSETS."""
    low = w.lower()
    title = f"title={w[:1].isupper()}"
    own = ("bias", f"w={low}", f"suf3={low[-3:]}", f"suf2={low[-2:]}", f"pre3={low[:3]}", f"shape={_shape(w)}",
           title, f"digit={w.isdigit()}", f"len={min(len(w), 8)}")
    near = (f"w={low}", f"suf3={low[-3:]}", title)
    return (own, *(tuple(f"{offset}:{f}" for f in near) for offset in _OFFSETS))


def _words_features(words: Sequence[str], known: dict[str, _WordFeatures]) -> list[_WordFeatures]:
    """`_word_features` of each word, from `known` (a training job's cache: words repeat, the regexes of `_shape`
    were most of the extraction's time, and shared strings keep a job's features small)."""
    out = []
    for w in words:
        if (found := known.get(w)) is None:
            found = known[w] = _word_features(w)
        out.append(found)
    return out


def _token_features(per_word: Sequence[_WordFeatures]) -> list[list[str]]:
    """Each token's features: its own, then its neighbours' (or the edge) at each offset."""
    out = []
    for i, own in enumerate(per_word):
        features = list(own[0])
        for k, offset in enumerate(_OFFSETS):
            j = i + offset
            if 0 <= j < len(per_word):
                features += per_word[j][k + 1]
            else:
                features.append(_EDGES[k])
        out.append(features)
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


# Word features and labels of one example, computed once per training job (the held-out fold reuses them).
_Sequence = tuple[list[_WordFeatures], list[str]]


def _sequences(examples: Iterable[TrainingExample]) -> list[_Sequence]:
    known: dict[str, _WordFeatures] = {}
    out = []
    for example in examples:
        words, labels = _bio(example)
        out.append((_words_features(words, known), labels))
    return out


def _inside_only(labels: list[str]) -> list[str]:
    """BIO labels as IO labels: "I-x" for every token of an entity x. Half the labels, a quarter of the Viterbi
    cost; two entities of one type with no token between them would read as one span."""
    return [label if label == "O" else "I-" + label[2:] for label in labels]


# L-BFGS costs ~85 CPU s per fit on hwu64's 9,957 examples (5,750 annotated, 54 entity types, 105 BIO labels):
# above LBFGS_MAX_EXAMPLES the averaged perceptron over IO labels, whose cost is the label count squared per token
# (decision records, hwu64, 8 shuffles each: BIO 10 epochs 12.4 CPU s, entity micro F1 on the test file 0.7225;
# IO 14 epochs 7.0 s, 0.7241). Small sets keep L-BFGS over BIO labels, and three folds.
LBFGS_MAX_EXAMPLES = 2_000
PERCEPTRON_EPOCHS = 14
HELD_OUT_EPOCHS = 7
"""Epochs of a large set's held-out fold: its score is an estimate for admins, and half the epochs read about 0.01
F1 low on hwu64 (0.724-0.728 against 0.735-0.741) for 2.3 of its 5.3 CPU s."""


def _train(sequences: Iterable[_Sequence], *, large: bool, max_iterations: int, epochs: int) -> bytes:
    trainer = pycrfsuite.Trainer(algorithm="ap" if large else "lbfgs", verbose=False)
    for per_word, labels in sequences:
        if per_word:
            trainer.append(_token_features(per_word), _inside_only(labels) if large else labels)
    if large:
        trainer.set_params({"max_iterations": epochs, "feature.possible_transitions": True})
    else:
        trainer.set_params({"c1": 0.1, "c2": 0.05, "max_iterations": max_iterations,
                            "feature.possible_transitions": True})
    handle, path = tempfile.mkstemp(suffix=".crfsuite")
    os.close(handle)
    try:
        trainer.train(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


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
        elastic-net regularisation (`max_iterations`); above, the averaged perceptron over IO labels
        (PERCEPTRON_EPOCHS)."""
        if sum(1 for e in examples if e.entities) < MIN_ANNOTATED:
            return None
        return cls._fitted(_sequences(examples), synonyms, large=len(examples) > LBFGS_MAX_EXAMPLES,
                           max_iterations=max_iterations)

    @classmethod
    def _fitted(cls, sequences: Sequence[_Sequence], synonyms: dict[str, list[str]] | None, *, large: bool,
                max_iterations: int = 80, epochs: int = PERCEPTRON_EPOCHS) -> EntityTagger:
        model = _train(sequences, large=large, max_iterations=max_iterations, epochs=epochs)
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
        labels = self._open().tag(_token_features(_words_features(words, {})))
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


def learn(examples: Sequence[TrainingExample], synonyms: dict[str, list[str]] | None = None,
          folds: int = 3) -> tuple[EntityTagger | None, dict[str, dict[str, float]] | None]:
    """The tagger fitted on all examples and its held-out entity scores (`cross_validate`), the token features
    computed once for both; (None, None) without enough annotations."""
    annotated = sum(1 for e in examples if e.entities)
    if annotated < MIN_ANNOTATED:
        return None, None
    sequences = _sequences(examples)
    large = len(examples) > LBFGS_MAX_EXAMPLES
    scores = _held_out(examples, sequences, synonyms, folds, large) if annotated >= folds * MIN_ANNOTATED else None
    return EntityTagger._fitted(sequences, synonyms, large=large), scores


def cross_validate(examples: Sequence[TrainingExample], synonyms: dict[str, list[str]] | None = None,
                   folds: int = 3) -> dict[str, dict[str, float]] | None:
    """Entity scores of k-fold CRFs (every k-th example held out); None without enough annotations. Above
    LBFGS_MAX_EXAMPLES the first fold alone (a third of thousands of examples is a steady estimate, and the
    training job's time is the cost), with the final model's algorithm (the averaged perceptron, IO labels) for
    HELD_OUT_EPOCHS."""
    if sum(1 for e in examples if e.entities) < folds * MIN_ANNOTATED:
        return None
    return _held_out(examples, _sequences(examples), synonyms, folds, len(examples) > LBFGS_MAX_EXAMPLES)


def _held_out(examples: Sequence[TrainingExample], sequences: Sequence[_Sequence],
              synonyms: dict[str, list[str]] | None, folds: int, large: bool) -> dict[str, dict[str, float]]:
    truth: list[TrainingExample] = []
    predicted: list[list[Span]] = []
    for k in range(1 if large else folds):
        train = [s for i, s in enumerate(sequences) if i % folds != k]
        test = [e for i, e in enumerate(examples) if i % folds == k]
        annotated = sum(1 for i, e in enumerate(examples) if i % folds != k and e.entities)
        # As EntityTagger.fit: a fold with fewer annotated examples learns nothing and finds nothing.
        tagger = (EntityTagger._fitted(train, synonyms, large=large, epochs=HELD_OUT_EPOCHS)
                  if annotated >= MIN_ANNOTATED else None)
        truth += test
        predicted += [tagger.spans(e.text) if tagger else [] for e in test]
    return score(truth, predicted)
