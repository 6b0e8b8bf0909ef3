"""Builds the NLU engine the settings ask for, and the FAQ answer lookup the decision policy uses."""

from __future__ import annotations

from pathlib import Path

from api.settings import Settings
from nlu.protocol import IntentEngine, KeywordEngine


async def build_nlu_engine(settings: Settings) -> IntentEngine:
    if settings.nlu.engine == "keyword":
        return KeywordEngine()
    from nlu.engines import build_engine

    return await build_engine(settings.nlu, Path(settings.data_dir) / "models")
