"""What the web chat says on its own, in Russian and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "offline_hours": {
        "en": "Our operators are offline now (working hours: {hours}). Leave a message: the bot answers right away, "
              "and an operator will reply when back.",
        "ru": "Сейчас операторы не в сети (часы работы: {hours}). Оставьте сообщение: бот ответит сразу, "
              "а оператор — как только вернётся.",
    },
    "offline_agents": {
        "en": "No operator is available right now. Leave a message: the bot answers right away, and an operator "
              "will reply as soon as possible.",
        "ru": "Сейчас нет свободных операторов. Оставьте сообщение: бот ответит сразу, а оператор — "
              "как только освободится.",
    },
}


def text(key: str, language: str | None, **values: object) -> str:
    return TEXTS[key]["ru" if language == "ru" else "en"].format(**values)
