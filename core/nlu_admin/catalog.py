"""The bot's FAQ answers per intent and language, kept in memory for the decision policy."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.nlu_admin import service


class ResponseCatalog:
    """FAQ answers per intent and language, read from the database and reloaded when admins change them."""

    def __init__(self) -> None:
        self._answers: dict[str, dict[str, str]] = {}

    async def reload(self, session: AsyncSession) -> None:
        self._answers = await service.responses(session)

    def lookup(self, intent: str, language: str) -> str | None:
        by_lang = self._answers.get(intent) or {}
        return by_lang.get(language) or by_lang.get("en") or by_lang.get("ru")
