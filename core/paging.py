"""Keyset cursors of the API's lists: the position after a page's last row, as an opaque string.

A cursor is the URL-safe base64 (unpadded) of a compact JSON array whose first element names what it continues
(a ticket list's sort, "search", "data-items"), so one list's cursor is refused by another. It is not signed: it
holds only the sort key of a row the caller has already seen, so a forged one can only start a page at another
position of the same list, never show more than the filters allow. Each list checks the types and ranges of the
values it decodes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.errors import ValidationFailedError

MAX_CURSOR_CHARS = 1000


def encode_cursor(*parts: str | int | float | None) -> str:
    raw = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def not_a_cursor(cursor: str) -> ValidationFailedError:
    return ValidationFailedError("cursor is not one this API returned", cursor=cursor[:80])


def cursor_parts(cursor: str, count: int) -> list[Any]:
    """The `count` values a cursor holds; ValidationFailedError for one that is malformed (not base64, not JSON,
    not an array of that many values)."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise not_a_cursor(cursor) from None
    if not isinstance(parts, list) or len(parts) != count:
        raise not_a_cursor(cursor)
    return parts
