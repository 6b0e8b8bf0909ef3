"""Builds the NLU engine the settings ask for, and the FAQ answer lookup the decision policy uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

from api.settings import Settings
from core.ingest.service import ResponseLookup
from nlu.protocol import IntentEngine, KeywordEngine


async def build_nlu_engine(settings: Settings) -> IntentEngine:
    """The configured engine; the embedded one may train the shipped data on first start (off the loop)."""
    if settings.nlu.engine == "keyword":
        return KeywordEngine()
    from nlu.engines import build_engine

    return await asyncio.to_thread(build_engine, settings.nlu, Path(settings.data_dir) / "models")


def shipped_responses() -> ResponseLookup:
    """FAQ answers from the shipped default data, per intent and language."""
    from nlu.data import load_training_data

    responses = load_training_data().responses

    def lookup(intent: str, language: str) -> str | None:
        by_lang = responses.get(intent) or {}
        return by_lang.get(language) or by_lang.get("en")

    return lookup
