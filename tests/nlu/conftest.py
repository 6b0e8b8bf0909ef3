"""Fixtures of the NLU tests: the shipped data, a held-out split, and one engine trained once per session."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nlu.data import load_training_data
from nlu.embedded import EmbeddedEngine
from nlu.protocol import TrainingData


@pytest.fixture(scope="session")
def default_data() -> TrainingData:
    return load_training_data()


@pytest.fixture(scope="session")
def split(default_data: TrainingData) -> tuple[TrainingData, TrainingData]:
    """80/20 split of the shipped data, stratified by intent."""
    rng = random.Random(7)
    train = TrainingData(synonyms=default_data.synonyms, regexes=default_data.regexes,
                         lookups=default_data.lookups, responses=default_data.responses)
    test = TrainingData()
    for intent in default_data.intents:
        examples = [e for e in default_data.examples if e.intent == intent]
        rng.shuffle(examples)
        cut = len(examples) // 5
        test.examples.extend(examples[:cut])
        train.examples.extend(examples[cut:])
    return train, test


@pytest.fixture(scope="session")
def trained_engine(tmp_path_factory: pytest.TempPathFactory,
                   split: tuple[TrainingData, TrainingData]) -> EmbeddedEngine:
    engine = EmbeddedEngine(tmp_path_factory.mktemp("models"))
    engine.train_sync(split[0])
    return engine


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"
