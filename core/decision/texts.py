"""The bot's own phrases (not FAQ answers), in Russian and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "escalated": {
        "en": "Thank you! Your request {ticket} has been passed to our {team} team; an operator will reply soon.",
        "ru": "Спасибо! Ваше обращение {ticket} передано специалистам ({team}); оператор скоро ответит.",
    },
    "handoff": {
        "en": "Connecting you with an operator. Your request number is {ticket}.",
        "ru": "Соединяю с оператором. Номер вашего обращения: {ticket}.",
    },
    "ask_order_number": {
        "en": "Please send me your order number (for example ORD-123456) and I will check its status.",
        "ru": "Пожалуйста, пришлите номер заказа (например, ORD-123456), и я проверю его статус.",
    },
    "order_status": {
        "en": "Order {order}: {status}.{description}",
        "ru": "Заказ {order}: {status}.{description}",
    },
    "order_not_found": {
        "en": "I could not find order {order}. Please check the number.",
        "ru": "Не нашёл заказ {order}. Пожалуйста, проверьте номер.",
    },
    "nlu_unavailable": {
        "en": "Thank you! Your request {ticket} has been passed to an operator.",
        "ru": "Спасибо! Ваше обращение {ticket} передано оператору.",
    },
    "talk_to_operator": {"en": "Talk to an operator", "ru": "Связаться с оператором"},
}

TEAM_NAMES: dict[str, dict[str, str]] = {
    "general": {"en": "support", "ru": "поддержка"},
    "billing": {"en": "billing", "ru": "биллинг и оплата"},
    "technical": {"en": "technical support", "ru": "техническая поддержка"},
    "sales": {"en": "sales", "ru": "отдел продаж"},
    "retention": {"en": "customer care", "ru": "отдел по работе с клиентами"},
}


def text(key: str, language: str | None, **values: object) -> str:
    lang = language if language in ("ru", "en") else "en"
    return TEXTS[key][lang].format(**values)


def team_name(slug: str | None, language: str | None) -> str:
    lang = language if language in ("ru", "en") else "en"
    return TEAM_NAMES.get(slug or "general", {}).get(lang, slug or "support")
