"""Waiting for a condition in the jobs tests (never for a length of time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Yield to the event loop until `predicate()` holds; fail with `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None
