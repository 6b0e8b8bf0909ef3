"""Builds the NLU engine the settings ask for, and the FAQ answer lookup the decision policy uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from core.clock import SYSTEM_CLOCK, Clock
from nlu.protocol import IntentEngine, KeywordEngine, TrainingData


async def build_nlu_engine(settings: Settings) -> IntentEngine:
    """The configured engine; the embedded one may train the shipped data on first start (off the loop)."""
    if settings.nlu.engine == "keyword":
        return KeywordEngine()
    from nlu.engines import build_engine

    return await asyncio.to_thread(build_engine, settings.nlu, Path(settings.data_dir) / "models")


async def prepare_nlu_data(session: AsyncSession, shipped: TrainingData, *, seed: bool,
                           clock: Clock = SYSTEM_CLOCK) -> None:
    """First start: import the shipped intents (with their synonyms, regexes and lookups) into the database - the
    seed of a fresh install, never used again once it has intents. Every start: fail orphaned training jobs."""
    from core.nlu_admin import service as nlu_admin

    try:
        async with session.begin():
            if seed and await nlu_admin.intent_count(session) == 0:
                await nlu_admin.import_data(session, shipped, source="shipped", mode=None, actor=None)
            await nlu_admin.fail_stale_jobs(session, clock.now())
    except IntegrityError:
        # Another instance seeded at the same moment; its data is there now.
        await session.rollback()
