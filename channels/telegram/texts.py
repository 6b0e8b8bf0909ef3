"""What the Telegram bot says on its own (not ticket answers), in Russian and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "start": {
        "en": "Hello! I am the support bot. Ask your question here and I will answer or pass it to an operator. "
              "You can also share your phone number so we recognise you as our customer.",
        "ru": "Здравствуйте! Я бот поддержки. Задайте вопрос здесь — я отвечу или передам его оператору. "
              "Можно также поделиться номером телефона, чтобы мы узнали вас как абонента.",
    },
    "share_phone": {"en": "Share my phone number", "ru": "Поделиться номером телефона"},
    "contact_linked": {
        "en": "Thank you! Your phone number {phone} is linked to your conversations with us.",
        "ru": "Спасибо! Номер {phone} привязан к вашим обращениям.",
    },
    "contact_foreign": {
        "en": "Thank you. Please share your own contact with the button below so we can verify your number.",
        "ru": "Спасибо. Чтобы подтвердить номер, поделитесь, пожалуйста, своим контактом кнопкой ниже.",
    },
    "unsupported": {
        "en": "Sorry, I cannot read this kind of message yet. Please write your question as text, "
              "or send a photo or a document.",
        "ru": "Извините, такие сообщения я пока не понимаю. Напишите, пожалуйста, вопрос текстом "
              "или пришлите фото или документ.",
    },
}


def language_of(language_code: str | None) -> str:
    """Telegram's IETF language tag of the user, reduced to the languages the bot speaks."""
    return "ru" if (language_code or "").lower().split("-")[0] in ("ru", "uk", "be", "kk") else "en"


def text(key: str, language: str, **values: object) -> str:
    return TEXTS[key]["ru" if language == "ru" else "en"].format(**values)
