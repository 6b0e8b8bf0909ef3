"""The bot's FAQ answers per intent and language, kept in memory for the decision policy."""

from __future__ import annotations

import random

from sqlalchemy.ext.asyncio import AsyncSession

from core.nlu_admin import service


class ResponseCatalog:
    """FAQ answers per intent and language, read from the database and reloaded when admins change them.

    A response with several variants (Rasa's list under `utter_<intent>`) answers with one of them chosen at
    random, as Rasa does; `rng` is injectable so tests can fix the choice."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._answers: dict[str, dict[str, list[str]]] = {}
        self._rng = rng or random.Random()  # noqa: S311 - wording variety, not secrecy

    async def reload(self, session: AsyncSession) -> None:
        self._answers = await service.responses(session)

    def lookup(self, intent: str, language: str) -> str | None:
        by_lang = self._answers.get(intent) or {}
        variants = by_lang.get(language) or by_lang.get("en") or by_lang.get("ru")
        if not variants:
            return None
        return variants[0] if len(variants) == 1 else self._rng.choice(variants)
