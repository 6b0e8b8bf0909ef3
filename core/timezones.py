"""Local times and time zone names as settings and profiles give them."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A local time of day as settings and forms take it (quiet hours, reminder and summary times).
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def known_zone(name: str) -> str:
    """`name` if it is an IANA zone this machine knows; a ValueError (pydantic's 422 reason) otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name
