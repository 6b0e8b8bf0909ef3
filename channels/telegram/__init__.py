"""The Telegram channel (python-telegram-bot): webhook or polling, text, media, contacts, inline buttons."""
