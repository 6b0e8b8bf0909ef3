"""The outbox dispatcher: claims due rows, sends them through their channel, records the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.db.base import utcnow
from core.db.session import finish_even_if_cancelled
from core.events import EventBus, take_pending
from core.jobs import Backoff, Every, Job, JobContext, JobHealth
from core.outbox import service
from core.outbox.schemas import OutboundEnvelope

log = logging.getLogger(__name__)


class PermanentSendError(Exception):
    """The channel refused the message for good (unknown recipient, blocked bot): no retry."""


class PartialDelivery(Exception):
    """Some parts of a message in several parts (text chunks, files) reached the customer before `cause`: the
    outbox records how many, and the retry sends only the rest (the customer never gets a part twice).

    A PermanentSendError as the cause fails the message for good, like on its own.
    """

    def __init__(self, delivered_parts: int, provider_message_id: str | None, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause} (after {delivered_parts} parts were delivered)")
        self.delivered_parts = delivered_parts
        self.provider_message_id = provider_message_id
        self.cause = cause


class Sender(Protocol):
    async def send(self, envelope: OutboundEnvelope) -> str | None: ...


@dataclass
class DispatcherStats:
    sent: int = 0
    failed_attempts: int = 0
    failed: int = 0
    last_run_at: datetime | None = None
    last_error: str | None = None
    running: bool = False  # mirrors the job's state (the console's channel page shows it)


class OutboxDispatcher:
    """Sends queued messages with retries and exponential backoff; safe to run on many instances."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        senders: Callable[[str], Sender | None],
        bus: EventBus,
        settings: CoreSettings,
        *,
        concurrency: int = 16,
        record_concurrency: int = 4,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.record_concurrency = record_concurrency
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.senders = senders
        self.bus = bus
        self.settings = settings
        self.stats = DispatcherStats()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._on_wire: set[int] = set()  # sends in progress (past the semaphore)

    def job(self) -> Job:
        """The dispatcher as a job: a batch per tick, polled every `outbox_poll_seconds`, woken at once by new
        outbox rows (after a short pause that lets the rows of concurrent transactions gather into one batch: one
        claim and one bulk update for many messages instead of a pair of transactions for each), again at once
        while full batches come back. Safe on many instances: rows are claimed, so the job needs no lease.

        A stop cancels the tick at once: the dispatcher itself lets the sends on the wire finish (see
        `dispatch_once`)."""
        return Job(
            name="outbox", tick=self._tick, schedule=Every(self.settings.outbox_poll_seconds),
            wake_topics=("outbox.queued",), gather_seconds=self.settings.outbox_gather_seconds,
            backoff=Backoff(initial=self.settings.outbox_poll_seconds,
                            # a database outage: back within half a minute of its end
                            maximum=max(self.settings.outbox_poll_seconds,
                                        min(30.0, self.settings.outbox_backoff_max_seconds))),
            cancel_on_stop=True, details=self._details, on_change=self._job_changed,
        )

    async def _tick(self, ctx: JobContext) -> bool:
        """One batch; True when it was full (more are waiting)."""
        return await self.dispatch_once() >= self.settings.outbox_batch_size

    def _details(self) -> dict[str, Any]:
        return {"sent": self.stats.sent, "failed_attempts": self.stats.failed_attempts, "failed": self.stats.failed,
                "dispatch_error": self.stats.last_error}

    def _job_changed(self, health: JobHealth) -> None:
        self.stats.running = health.state != "stopped"
        if health.state == "backing_off":
            self.stats.last_error = health.last_error

    async def dispatch_once(self) -> int:
        """Claim one batch, send it, record outcomes. Returns how many rows were handled.

        Outcomes are recorded as the sends finish, in groups (whatever finished while the recorders were busy
        goes in the next one: one UPDATE per group; up to `record_concurrency` groups written at once), not
        once the whole batch is done: a crash then resends only what was on the wire or being recorded, not
        every reply the batch had already delivered. Until its outcome is written, each claimed row's lease is
        renewed by a heartbeat, so the lease can be short and the rows of a dead dispatcher are sent again
        within seconds. A stop (cancellation) lets the sends on the wire finish and be written first.
        """
        self.stats.last_run_at = utcnow()
        lease = self.settings.outbox_lease_seconds

        async def claim() -> tuple[dict[int, int], list[OutboundEnvelope]]:
            async with self.sessionmaker() as session, session.begin():
                claims = await service.claim_due(session, self.settings.outbox_batch_size, lease, now=self.clock())
                return claims, await service.build_envelopes(session, list(claims)) if claims else []

        # A stop (this job is cancelled at once) must not land between the claim's UPDATE and its commit: the
        # cancelled statement leaves its connection with the transaction open, and on SQLite every other writer
        # then waits out the busy timeout (the app's own clean-up at shutdown among them). The claim ends, and
        # the stop goes on from there: the rows claimed but not sent come back when their lease runs out.
        claims, envelopes = await finish_even_if_cancelled(claim())
        if not envelopes:
            return 0
        unrecorded = {e.outbox_id: claims[e.outbox_id] for e in envelopes}
        beating = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(unrecorded, beating), name="outbox-heartbeat")
        finished: list[tuple[OutboundEnvelope, _Outcome]] = []
        recorders: set[asyncio.Task[None]] = set()

        async def record(group: list[tuple[OutboundEnvelope, _Outcome]]) -> None:
            # The replies are with the customer: a stop waits for their transaction rather than abandon it.
            await finish_even_if_cancelled(self._record(group, claims))
            for envelope, _ in group:
                unrecorded.pop(envelope.outbox_id, None)

        def flush(_: object = None) -> None:
            # What finished while every recorder was busy goes out as one group when one frees up. Several
            # groups are written at once: a group never waits behind another one's round trips.
            while finished and len(recorders) < self.record_concurrency:
                group = finished.copy()
                finished.clear()
                task = asyncio.create_task(record(group))
                recorders.add(task)
                task.add_done_callback(recorders.discard)
                task.add_done_callback(flush)

        def finish(envelope: OutboundEnvelope, task: asyncio.Task[_Outcome]) -> None:
            if not task.cancelled():
                finished.append((envelope, task.result()))
                flush()

        sends = [asyncio.create_task(self._send(e)) for e in envelopes]
        for envelope, send in zip(envelopes, sends, strict=True):
            send.add_done_callback(functools.partial(finish, envelope))
        try:
            # wait, not gather: a cancelled dispatcher (stopping) must not cancel the sends on the wire.
            await asyncio.wait(sends)
            while recorders:
                done, _ = await asyncio.wait(set(recorders))
                for task in done:
                    task.result()  # a recorder that gave up raises here (its rows go again after the lease)
        except asyncio.CancelledError:
            await self._finish_on_stop(envelopes, sends, recorders)
            raise
        finally:
            for pending in [*sends, *recorders]:
                pending.cancel()
            beating.set()
            await asyncio.wait({heartbeat})  # its beat in progress ends; a cancellation of ours still goes through
        return len(envelopes)

    async def _finish_on_stop(self, envelopes: list[OutboundEnvelope], sends: list[asyncio.Task[_Outcome]],
                              recorders: set[asyncio.Task[None]]) -> None:
        """Stopping (a deploy, not a crash): sends not started yet are dropped (their lease brings them back),
        while the ones on the wire and their records get a few seconds to finish - else every restart would
        send them again."""
        for envelope, send in zip(envelopes, sends, strict=True):
            if not send.done() and envelope.outbox_id not in self._on_wire:
                send.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(5.0, self.settings.outbox_lease_seconds / 2)
        while loop.time() < deadline:
            pending = [t for t in sends if not t.done()] + list(recorders)
            if not pending:
                return
            await asyncio.wait(pending, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED)

    async def _heartbeat(self, claims: dict[int, int], done: asyncio.Event) -> None:
        """Renew the lease of the claimed rows whose outcome is not written yet, until `done` is set.

        Ended by the event, never cancelled: a beat cancelled mid-UPDATE would abandon its connection inside the
        transaction (on SQLite, holding the write lock until the garbage collector closes it)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=self.settings.outbox_heartbeat_seconds)
            if done.is_set():
                return
            if not claims:
                continue
            try:
                async with self.sessionmaker() as session, session.begin():
                    await service.heartbeat(session, dict(claims), self.settings.outbox_lease_seconds,
                                            now=self.clock())
            except Exception as exc:
                # The next beat tries again; if the database stays away longer than the lease, another
                # dispatcher may send these rows again (at-least-once), which is why the lease is a few beats.
                self.stats.last_error = f"heartbeat: {type(exc).__name__}: {exc}"[:500]
                log.warning("outbox heartbeat failed", extra={"error": str(exc)[:200], "rows": len(claims)})

    async def _record(self, group: list[tuple[OutboundEnvelope, _Outcome]], claims: dict[int, int]) -> None:
        """Write the outcomes of a group of finished sends in one transaction; retried while the database is away.

        The replies are already with the customer: giving up at the first error would make every one of them go
        out again once the lease runs out. Past a deadline the error is raised (the leases have long run out).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(60.0, 6 * self.settings.outbox_lease_seconds)
        delay = 0.05
        while True:
            try:
                await self._record_once(group, claims)
                return
            except Exception as exc:
                if loop.time() >= deadline:
                    raise
                self.stats.last_error = f"recording deliveries: {type(exc).__name__}: {exc}"[:500]
                log.warning("outbox: recording deliveries failed, retrying",
                            extra={"error": str(exc)[:200], "rows": len(group)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.outbox_heartbeat_seconds)

    async def _record_once(self, group: list[tuple[OutboundEnvelope, _Outcome]], claims: dict[int, int]) -> None:
        sent = [(e, o.provider_id) for e, o in group if o.error is None]
        failed_attempts = failed = 0
        async with self.sessionmaker() as session:
            if len(sent) == len(group):
                # Deliveries only: one UPDATE, which commits itself - no BEGIN and COMMIT round trips, so the
                # window in which a crash resends these replies is as short as the database allows.
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                await service.mark_sent(session, sent)
                await session.commit()
            else:
                async with session.begin():
                    await service.mark_sent(session, sent)
                    for envelope, outcome in group:
                        if outcome.error is not None:
                            status = await service.mark_failed_attempt(
                                session, envelope.outbox_id, outcome.error, self.settings,
                                permanent=outcome.permanent, progress=outcome.progress,
                                attempt=claims.get(envelope.outbox_id))
                            failed_attempts += 1
                            failed += status == "failed"
            self.bus.publish_all(take_pending(session))
        self.stats.sent += len(sent)
        self.stats.failed_attempts += failed_attempts
        self.stats.failed += failed

    async def _send(self, envelope: OutboundEnvelope) -> _Outcome:
        sender = self.senders(envelope.channel)
        if sender is None:
            return _Outcome(error=f"channel {envelope.channel!r} is not enabled")
        async with self._semaphore:
            timeout = self.settings.outbox_send_timeout_seconds
            self._on_wire.add(envelope.outbox_id)
            try:
                # The heartbeat keeps the claim while a send runs: a send that never returns must end somewhere.
                async with asyncio.timeout(timeout):
                    provider_id = await sender.send(envelope)
                return _Outcome(provider_id=provider_id)
            except PartialDelivery as exc:
                permanent = isinstance(exc.cause, PermanentSendError)
                log.warning("send failed part-way", extra={"channel": envelope.channel,
                                                           "outbox_id": envelope.outbox_id, "error": str(exc)[:200]})
                return _Outcome(error=("rejected: " if permanent else "") + str(exc), permanent=permanent,
                                progress=(exc.delivered_parts, exc.provider_message_id))
            except PermanentSendError as exc:
                return _Outcome(error=f"rejected: {exc}", permanent=True)
            except TimeoutError as exc:
                log.warning("send timed out", extra={"channel": envelope.channel, "outbox_id": envelope.outbox_id})
                return _Outcome(error=f"send timed out after {timeout:g} s ({exc!r})")
            except Exception as exc:
                log.warning("send failed", extra={"channel": envelope.channel, "outbox_id": envelope.outbox_id,
                                                  "error": str(exc)[:200]})
                return _Outcome(error=f"{type(exc).__name__}: {exc}")
            finally:
                self._on_wire.discard(envelope.outbox_id)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One send: the provider's id, or the error (permanent or not, and the parts delivered before it)."""

    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    progress: tuple[int, str | None] | None = None
