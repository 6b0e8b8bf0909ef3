"""Issue 18, scope 3: entities learned from the examples' annotations (a CRF), with roles and groups, trained with
the intents, scored per entity, combined with the rule-based extractors."""

from __future__ import annotations

import pickle
from pathlib import Path

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
