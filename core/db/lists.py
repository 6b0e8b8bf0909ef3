"""Value lists for `IN (...)` written in few shapes.

A list bound to `IN (...)` is rendered with one placeholder per value, so each length is a statement of its own,
which PostgreSQL's driver prepares again on every connection that meets it (a round trip, parsed and planned by
the server). The ingest's lookups carry lists as long as their batch (1 to 64 messages): measured under webhook
load, a quarter of all statements were prepared first. Padded to the next power of two by repeating the last
value (a repeat changes nothing for `IN`), a lookup has at most eight shapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def padded(values: Iterable[T]) -> list[T]:
    """The values (their order kept), the last repeated up to the next power of two in number."""
    items = list(values)
    size = 1
    while size < len(items):
        size *= 2
    return items + items[-1:] * (size - len(items)) if items else items
