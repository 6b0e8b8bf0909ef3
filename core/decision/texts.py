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


ORDER_STATUSES: dict[str, dict[str, str]] = {
    "new": {"en": "received", "ru": "принят"},
    "accepted": {"en": "accepted", "ru": "принят"},
    "processing": {"en": "being processed", "ru": "в обработке"},
    "awaiting_payment": {"en": "awaiting payment", "ru": "ожидает оплаты"},
    "paid": {"en": "paid", "ru": "оплачен"},
    "shipped": {"en": "shipped", "ru": "отправлен"},
    "in_transit": {"en": "on its way", "ru": "в пути"},
    "ready_for_pickup": {"en": "ready for pickup", "ru": "готов к выдаче"},
    "delivered": {"en": "delivered", "ru": "доставлен"},
    "installation_scheduled": {"en": "installation scheduled", "ru": "назначен монтаж"},
    "completed": {"en": "completed", "ru": "выполнен"},
    "cancelled": {"en": "cancelled", "ru": "отменён"},
}


def order_status(status: str, language: str | None) -> str:
    """A known order status in the customer's language; an unknown one as the order system sent it."""
    lang = language if language in ("ru", "en") else "en"
    known = ORDER_STATUSES.get(status.strip().lower().replace(" ", "_").replace("-", "_"))
    return known[lang] if known else status


def text(key: str, language: str | None, **values: object) -> str:
    lang = language if language in ("ru", "en") else "en"
    return TEXTS[key][lang].format(**values)


def team_name(slug: str | None, language: str | None) -> str:
    lang = language if language in ("ru", "en") else "en"
    return TEAM_NAMES.get(slug or "general", {}).get(lang, slug or "support")
