"""Waiting for a condition instead of sleeping: poll until it holds, fail with what was awaited."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

# Long enough for a busy CI machine: a timeout only decides how late a failing test fails.
DEFAULT_TIMEOUT = 30.0


async def wait_for(condition: Callable[[], Any], what: str = "condition", *, timeout: float = DEFAULT_TIMEOUT,
                   interval: float = 0.02, ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """Call `condition` (plain or async) until it returns something truthy, and return that.

    Exceptions of the `ignore` types count as "not yet" (a server still starting refuses connections).
    Raises AssertionError naming `what` and the last value after `timeout` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            last = condition()
            if inspect.isawaitable(last):
                last = await last
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met in {timeout:g} s; last: {_short(last)}")
        await asyncio.sleep(interval)


def wait_for_sync(condition: Callable[[], Any], what: str = "condition", *, timeout: float = DEFAULT_TIMEOUT,
                  interval: float = 0.2, ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """`wait_for` for code without an event loop (processes the test started and watches from outside)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = condition()
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout:g} s; last: {_short(last)}")
        time.sleep(interval)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 500 else text[:500] + "..."


async def until(predicate: Callable[[], Any], what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """`wait_for` that checks at every turn of the event loop (tests that drive a ManualClock and wait for the
    jobs it woke to reach their next step)."""
    await wait_for(predicate, what, timeout=timeout, interval=0.001)
