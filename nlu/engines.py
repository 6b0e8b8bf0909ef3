"""Build the configured intent engine."""

from __future__ import annotations

import logging
from pathlib import Path

from nlu.config import NluSettings
from nlu.data import load_training_data
from nlu.embedded import DEFAULT_FEATURES, EmbeddedEngine
from nlu.protocol import IntentEngine, KeywordEngine, VersionedEngine
from nlu.rasa import RasaEngine

logger = logging.getLogger(__name__)
RASA_VERSIONS_FILE = "rasa-versions.json"

# Both engines keep model versions: mypy checks each against the protocol training and versioning use.
VERSIONED_ENGINES: tuple[type[VersionedEngine], ...] = (EmbeddedEngine, RasaEngine)


def build_engine(settings: NluSettings, model_dir: Path) -> IntentEngine:
    """The engine the settings name, ready to parse.

    The embedded engine loads the active model from model_dir; on a first start with no model it trains the
    shipped default data (a couple of seconds) and activates that. The rasa engine needs its server only
    when it is used: an unreachable server surfaces as EngineUnavailableError from parse.
    """
    if settings.engine == "rasa":
        return RasaEngine(settings.rasa_url, timeout_seconds=settings.rasa_timeout_seconds,
                          threshold=settings.rasa_threshold, extras=load_training_data(),
                          versions_file=model_dir / RASA_VERSIONS_FILE)
    if settings.engine == "keyword":
        return KeywordEngine()
    engine = EmbeddedEngine(model_dir, target_precision=settings.target_precision,
                            features=DEFAULT_FEATURES if settings.features is None else settings.features)
    version, trained = engine.load_or_train(load_training_data)
    if trained:
        logger.info("nlu: no model in %s, trained the shipped data as %s", model_dir, version)
    else:
        logger.info("nlu: loaded model %s from %s", version, model_dir)
    return engine
