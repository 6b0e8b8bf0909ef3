"""Group commit: the work of concurrent callers gathered into batches, one transaction each.

What arrived while the previous batch was being written (up to `batch_size`) becomes the next batch: one
transaction instead of one per caller. When a batch fails (a concurrent duplicate on a unique key, a deadlock,
an item that trips a bug) it is rolled back and its items are written one by one, each in its own transaction,
so one bad item never fails the others; a single item that loses a race to a concurrent writer is retried, and
returns the winner's result once that is visible. The events of a transaction are published after its commit,
once its callers have their results.

The batcher knows nothing of messages or tickets: `write` is the transaction, `find_existing` the lookup of a
committed result (see core/ingest/service.py for the message pipeline that uses it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from core.events import Event

log = logging.getLogger(__name__)

T = TypeVar("T")  # one caller's work
R = TypeVar("R")  # its result

MAX_ATTEMPTS = 5


@dataclass
class BatchStats:
    """What the batcher did since it started."""

    batches: int = 0
    messages: int = 0
    largest_batch: int = 0
    split_batches: int = 0  # batches that failed and were written one by one


@dataclass(eq=False, slots=True)
class _Waiting(Generic[T, R]):
    """An item waiting for its batch, and the caller waiting for its result."""

    item: T
    key: Hashable
    future: asyncio.Future[R]


def _settle(future: asyncio.Future[R], result: R | BaseException) -> None:
    if future.done():  # the caller went away (cancelled); the item is committed all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class GroupCommit(Generic[T, R]):
    """Batches the items of concurrent `submit` calls into transactions.

    Args:
        write: one transaction for a batch: the results in the items' order and the events to publish.
        find_existing: the committed result of an item, if another transaction wrote it first.
        key: an item's idempotency key; a batch holds at most one item per key (a duplicate waits for the next
            batch and then finds the first one committed).
        publish: publishes a committed transaction's events.
        batch_size: the most items in one transaction (read at every batch).
        on_result: called for each committed result, before its caller gets it (statistics).
        stats: the batch counters to update.
        linger: seconds the next batch waits for more arrivals when the previous one held several items and this
            one would not be full: under load the requests already on their way join it (one transaction for
            more messages: the statements of a batch cost about the same for 2 messages as for 20), while a
            lone message after a quiet spell is written at once.
    """

    def __init__(
        self,
        *,
        write: Callable[[list[T]], Awaitable[tuple[list[R], list[Event]]]],
        find_existing: Callable[[T], Awaitable[R | None]],
        key: Callable[[T], Hashable],
        publish: Callable[[list[Event]], None],
        batch_size: Callable[[], int],
        on_result: Callable[[T, R], None],
        stats: BatchStats,
        linger: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._write = write
        self._find_existing = find_existing
        self._key = key
        self._publish = publish
        self._batch_size = batch_size
        self._on_result = on_result
        self.stats = stats
        self._linger = linger
        self._last_size = 0  # items in this drain's batch before (busy when > 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Waiting[T, R]] = deque()
        self._drainer: asyncio.Task[None] | None = None  # writes the batches; ends when nothing is waiting

    async def submit(self, item: T) -> R:
        """Write `item` with the next batch; returns once that batch has committed."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests): nothing carries over
            self._loop, self._pending, self._drainer = loop, deque(), None
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append(_Waiting(item, self._key(item), future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Write batches until nothing is waiting (one batch at a time: the next one gathers meanwhile)."""
        while self._pending:
            linger = self._linger()
            if linger > 0 and self._last_size > 1 and len(self._pending) < self._batch_size():
                await asyncio.sleep(linger)
            batch = self._take_batch()
            self._last_size = len(batch)
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:  # shutdown: the callers must not wait forever
                for waiting in batch:
                    waiting.future.cancel()
                raise
        self._last_size = 0  # nothing waiting: the next message after this quiet spell is written at once

    def _take_batch(self) -> list[_Waiting[T, R]]:
        """The oldest waiting items, at most one per key."""
        batch: list[_Waiting[T, R]] = []
        keys: set[Hashable] = set()
        later: list[_Waiting[T, R]] = []
        size = self._batch_size()
        while self._pending and len(batch) < size:
            waiting = self._pending.popleft()
            if waiting.key in keys:
                later.append(waiting)
            else:
                keys.add(waiting.key)
                batch.append(waiting)
        self._pending.extendleft(reversed(later))
        return batch

    async def _run_batch(self, batch: list[_Waiting[T, R]]) -> None:
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        if len(batch) > 1:
            try:
                results, events = await self._write([w.item for w in batch])
            except Exception as exc:
                self.stats.split_batches += 1
                log.warning("ingest batch failed; ingesting its messages one by one",
                            extra={"size": len(batch), "error": f"{type(exc).__name__}: {exc}"[:300]})
            else:
                # Callers first: a channel acknowledges the customer's message before the live events (the bot's
                # answer among them) reach the customer's screen.
                for waiting, result in zip(batch, results, strict=True):
                    self._on_result(waiting.item, result)
                    _settle(waiting.future, result)
                self._publish(events)
                return
        for waiting in batch:
            try:
                result, events = await self._write_one(waiting.item)
            except Exception as exc:
                _settle(waiting.future, exc)
            else:
                self._on_result(waiting.item, result)
                _settle(waiting.future, result)
                self._publish(events)

    async def _write_one(self, item: T) -> tuple[R, list[Event]]:
        """One item in its own transaction, retried when a concurrent writer got in the way."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                results, events = await self._write([item])
                return results[0], events
            except (IntegrityError, OperationalError) as exc:
                # A concurrent transaction inserted the same item or the same new row first (or, on SQLite,
                # held the write lock too long): its result is now visible, or a retry succeeds.
                existing = await self._find_existing(item)
                if existing is not None:
                    return existing, []
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                log.info("ingest retry", extra={"attempt": attempt + 1, "error": type(exc).__name__})
        raise AssertionError("unreachable")
