"""Issue 18, scope 3: entities learned from the examples' annotations (a CRF), with roles and groups, trained with
the intents, scored per entity, combined with the rule-based extractors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pycrfsuite
import pytest

from nlu import crf
from nlu.data import load_training_data
from nlu.embedded import EmbeddedEngine
from nlu.protocol import ExampleEntity, TrainingData, TrainingExample

FIXTURES = Path(__file__).parent / "fixtures" / "rasa"


def _flights() -> list[TrainingExample]:
    cities = ["Berlin", "Paris", "London", "Rome", "Madrid", "Vienna", "Prague", "Oslo", "Dublin", "Lisbon"]
    out = []
    for i, a in enumerate(cities):
        b = cities[(i + 3) % len(cities)]
        text = f"fly from {a} to {b} please"
        out.append(TrainingExample(text, "book_flight", (
            ExampleEntity(9, 9 + len(a), "city", role="departure"),
            ExampleEntity(13 + len(a), 13 + len(a) + len(b), "city", role="destination"))))
        text = f"I need a ticket to {b} from {a}"
        start = text.index(b)
        out.append(TrainingExample(text, "book_flight", (
            ExampleEntity(start, start + len(b), "city", role="destination"),
            ExampleEntity(text.rindex(a), text.rindex(a) + len(a), "city", role="departure"))))
    return out


def test_the_crf_learns_roles_and_is_scored_per_entity() -> None:
    examples = _flights()
    tagger = crf.EntityTagger.fit(examples)
    assert tagger is not None
    spans = tagger.spans("fly from Warsaw to Athens please")
    assert [(s.entity, s.role) for s in spans] == [("city", "departure"), ("city", "destination")]
    scores = crf.cross_validate(examples)
    assert scores is not None and scores["city"]["f1"] > 0.8 and scores["micro"]["support"] == 40
    again = pickle.loads(pickle.dumps(tagger))  # noqa: S301 - what the engine saves with the intent model
    assert again.spans("fly from Warsaw to Athens please") == spans


def test_a_large_set_trains_the_averaged_perceptron_and_scores_one_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _flights()
    monkeypatch.setattr(crf, "LBFGS_MAX_EXAMPLES", 5)  # "large" (and so are the folds): the perceptron, one fold
    trained: list[str] = []
    real = crf.pycrfsuite.Trainer

    def trainer(*args: object, algorithm: str = "lbfgs", **kwargs: object) -> object:
        trained.append(algorithm)
        return real(*args, algorithm=algorithm, **kwargs)

    monkeypatch.setattr(crf.pycrfsuite, "Trainer", trainer)
    tagger = crf.EntityTagger.fit(examples)
    assert tagger is not None and trained == ["ap"]
    spans = tagger.spans("fly from Warsaw to Athens please")
    assert [(s.entity, s.role) for s in spans] == [("city", "departure"), ("city", "destination")]
    scores = crf.cross_validate(examples)
    assert trained == ["ap", "ap"]  # one fold
    assert scores is not None and scores["micro"]["support"] == 14 and scores["city"]["f1"] > 0.8


def test_a_large_set_learns_inside_only_labels_and_its_fold_as_the_final_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _flights()
    for a, b in (("New York", "Rome"), ("San Francisco", "Oslo"), ("Rome", "Los Angeles"), ("Oslo", "New Delhi")):
        text = f"fly from {a} to {b} please"
        examples.append(TrainingExample(text, "book_flight", (
            ExampleEntity(9, 9 + len(a), "city", role="departure"),
            ExampleEntity(13 + len(a), 13 + len(a) + len(b), "city", role="destination"))))
    monkeypatch.setattr(crf, "LBFGS_MAX_EXAMPLES", 20)  # 24 examples are large, a fold's 16 would not be
    trained: list[tuple[str, set[str]]] = []
    epochs: list[int] = []
    real = pycrfsuite.Trainer

    class Trainer(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, algorithm: str = "lbfgs", **kwargs: object) -> None:
            super().__init__(*args, algorithm=algorithm, **kwargs)
            self.algorithm, self.seen = algorithm, set[str]()

        def set_params(self, params: dict[str, object]) -> None:
            epochs.append(int(params["max_iterations"]))  # type: ignore[call-overload]
            super().set_params(params)

        def append(self, features: object, labels: list[str], *args: object) -> None:
            self.seen.update(labels)
            super().append(features, labels, *args)

        def train(self, *args: object) -> None:
            trained.append((self.algorithm, self.seen))
            super().train(*args)

    monkeypatch.setattr(pycrfsuite, "Trainer", Trainer)  # the module nlu.crf calls
    tagger, scores = crf.learn(examples)
    assert [algorithm for algorithm, _ in trained] == ["ap", "ap"]  # the fold too, though it has 16 examples
    assert epochs == [crf.HELD_OUT_EPOCHS, crf.PERCEPTRON_EPOCHS]
    assert all(labels == {"O", "I-city\x1fdeparture\x1f", "I-city\x1fdestination\x1f"} for _, labels in trained)
    assert tagger is not None and scores is not None and scores["micro"]["support"] == 16
    spans = tagger.spans("fly from New York to Athens please")  # a two-word entity from inside-only labels
    assert [(s.entity, s.role) for s in spans] == [("city", "departure"), ("city", "destination")]
    assert spans[0].end - spans[0].start == len("New York")
    monkeypatch.setattr(crf, "LBFGS_MAX_EXAMPLES", 2_000)
    trained.clear()
    crf.learn(examples)  # a small set: L-BFGS over BIO labels, three folds and the final model
    assert [algorithm for algorithm, _ in trained] == ["lbfgs"] * 4
    assert epochs[2:] == [80] * 4  # L-BFGS iterations
    assert any(label.startswith("B-") for _, labels in trained for label in labels)


def test_learn_is_the_tagger_and_the_scores_of_fit_and_cross_validate() -> None:
    examples = _flights()
    tagger, scores = crf.learn(examples)
    alone = crf.EntityTagger.fit(examples)
    assert tagger is not None and alone is not None and tagger.model == alone.model
    assert scores == crf.cross_validate(examples)
    too_few = [TrainingExample("to Paris", "x", (ExampleEntity(3, 8, "city"),)), TrainingExample("hello", "y")]
    assert crf.learn(too_few) == (None, None)
    assert crf.learn(examples[:4])[1] is None  # four annotated examples: a tagger, too few for three folds


def test_too_few_annotations_train_no_tagger() -> None:
    one = [TrainingExample("to Paris", "x", (ExampleEntity(3, 8, "city"),)), TrainingExample("hello", "y")]
    assert crf.EntityTagger.fit(one) is None
    assert crf.score(one, [[]] * 2)["city"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1.0}


def test_the_embedded_engine_learns_entities_in_the_same_training(tmp_path: Path) -> None:
    data = load_training_data(FIXTURES / "formbot")
    data.examples += _flights()
    engine = EmbeddedEngine(tmp_path)
    version = engine.train_sync(data)
    manifest = next(v.manifest for v in engine.list_versions() if v.version == version)
    scores = manifest["cross_validation"]["entities"]
    assert {"cuisine", "num_people", "city", "micro"} <= set(scores)
    assert scores["city"]["f1"] > 0.8
    parse = engine.parse_sync("fly from Warsaw to Athens please, my order ORD-123456")
    kinds = [(e.type, e.text) for e in parse.entities]
    assert ("city:departure", "Warsaw") in kinds and ("city:destination", "Athens") in kinds
    assert ("order_number", "ORD-123456") in kinds  # the rule-based extractors still run
    gastro = engine.parse_sync("what about gastro pub")
    assert [(e.type, e.value) for e in gastro.entities] == [("cuisine", "gastropub")]  # synonyms applied
    plain = EmbeddedEngine(tmp_path / "plain")
    plain.train_sync(TrainingData(examples=[e for e in data.examples if not e.entities]))
    assert plain.parse_sync("fly from Warsaw to Athens").entities == ()
