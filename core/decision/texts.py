"""The bot's own phrases (not FAQ answers), team names and order statuses, from the message catalog (core.i18n)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from core.i18n import translator

# The catalog keys: `bot.<reply key>`, `team.<team slug>`, `order_status.<status>`.
BOT_PREFIX = "bot."


def text(key: str, language: str | None, **values: object) -> str:
    """One of the bot's phrases (a Decision's `reply_key`, or `talk_to_operator`) in the customer's language."""
    return translator(language)(BOT_PREFIX + key, **values)


def team_name(slug: str | None, language: str | None) -> str:
    """The team's name as the bot tells it to the customer; a team the catalog does not name, by its slug."""
    return translator(language).get(f"team.{slug or 'general'}") or slug or "support"


def order_status(status: str, language: str | None) -> str:
    """A known order status in the customer's language; an unknown one as the order system sent it."""
    known = status.strip().lower().replace(" ", "_").replace("-", "_")
    return translator(language).get(f"order_status.{known}") or status


def contract_status(status: str, language: str | None) -> str:
    return translator(language).get(f"contract_status.{status}") or status


WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def expected_wait(wait: timedelta, language: str | None) -> str:
    """"Expected wait: about 20 minutes." with the language's plural of minutes or hours (1 минута, 5 минут)."""
    _ = translator(language)
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    if minutes < 60:
        amount = _.ngettext("bot.wait_minutes", minutes)
    else:
        amount = _.ngettext("bot.wait_hours", math.ceil(minutes / 60))
    return _("bot.expected_wait", wait=amount)


def back_at(when: datetime, language: str | None) -> str:
    """"Our team is back at 09:00 (Mon)." for a local opening time."""
    _ = translator(language)
    day = _.get(f"weekday.{WEEKDAY_KEYS[when.weekday()]}") or WEEKDAY_KEYS[when.weekday()]
    return _("bot.back_at", time=when.strftime("%H:%M"), day=day)
