"""The outbox dispatcher: claims due rows, sends them through their channel, records the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

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
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.senders = senders
        self.bus = bus
        self.settings = settings
        self.stats = DispatcherStats()
        # Replies out whose outcome is not committed yet (on the wire, or answered and being written): what a
        # crash of this process would send again. Shared by the batches, which may overlap at a stop.
        self._window = asyncio.Semaphore(settings.outbox_max_unrecorded)

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

        Each outcome is recorded the moment its send returns, in groups (what comes back while a write is on its
        way goes in the next one: one UPDATE per group, on PostgreSQL over a connection the batch holds, with a
        statement of one shape and no commit wait - see `_Recorder`), and a send starts only when fewer than
        `outbox_max_unrecorded` replies are out unrecorded: a crash of the process resends at most that many.
        Until its outcome is written, each claimed row's lease is renewed by a heartbeat, so the lease can be
        short and the rows of a dead dispatcher are sent again within seconds. A stop (cancellation) lets the
        sends on the wire finish and be written first.
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
        recorder = _Recorder(self, claims)
        recorder.open()
        started: set[int] = set()  # sends past the window: never dropped by a stop
        deliveries = [asyncio.create_task(self._deliver(e, recorder, unrecorded, started)) for e in envelopes]
        try:
            # wait, not gather: a cancelled dispatcher (stopping) must not cancel the sends on the wire.
            await asyncio.wait(deliveries)
            for delivery in deliveries:
                delivery.result()  # a recording that gave up raises here (its rows go again after the lease)
        except asyncio.CancelledError:
            await self._finish_on_stop(envelopes, deliveries, started)
            raise
        finally:
            for pending in deliveries:
                pending.cancel()
            await recorder.close()
            beating.set()
            await asyncio.wait({heartbeat})  # its beat in progress ends; a cancellation of ours still goes through
        return len(envelopes)

    async def _deliver(self, envelope: OutboundEnvelope, recorder: _Recorder, unrecorded: dict[int, int],
                       started: set[int]) -> None:
        """Send one reply and record its outcome, holding one of the `outbox_max_unrecorded` slots throughout."""
        async with self._window:
            started.add(envelope.outbox_id)
            outcome = await self._send(envelope)
            await recorder.record(envelope, outcome)
        unrecorded.pop(envelope.outbox_id, None)

    async def _finish_on_stop(self, envelopes: list[OutboundEnvelope], deliveries: list[asyncio.Task[None]],
                              started: set[int]) -> None:
        """Stopping (a deploy, not a crash): sends not started yet are dropped (their lease brings them back),
        while the ones on the wire and their records get a few seconds to finish - else every restart would
        send them again."""
        for envelope, delivery in zip(envelopes, deliveries, strict=True):
            if not delivery.done() and envelope.outbox_id not in started:
                delivery.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(5.0, self.settings.outbox_lease_seconds / 2)
        while loop.time() < deadline:
            pending = [t for t in deliveries if not t.done()]
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

    async def _record(self, group: list[tuple[OutboundEnvelope, _Outcome]], claims: dict[int, int],
                      write: Callable[[], Awaitable[None]] | None = None) -> None:
        """Write the outcomes of a group of finished sends (`write`, by default one pooled transaction); retried
        while the database is away.

        The replies are already with the customer: giving up at the first error would make every one of them go
        out again once the lease runs out. Past a deadline the error is raised (the leases have long run out).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(60.0, 6 * self.settings.outbox_lease_seconds)
        delay = 0.05
        while True:
            try:
                await (write() if write is not None else self._record_once(group, claims))
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
        timeout = self.settings.outbox_send_timeout_seconds
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


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One send: the provider's id, or the error (permanent or not, and the parts delivered before it)."""

    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    progress: tuple[int, str | None] | None = None


class _Recorder:
    """Writes the outcomes of one batch's sends the moment they come back.

    Deliveries are written in groups by one writer: what comes back while a write is on its way goes in the next
    one (one UPDATE per group). On PostgreSQL the writer holds a connection for the batch, so a group costs one
    round trip: no pool checkout (and its ping) per group, a statement of one shape whatever the group's size
    (prepared once per connection), autocommit, and `synchronous_commit = off` - the commit does not wait for
    the WAL flush. What that risks is only the record of a delivery: if the database server itself crashes
    within its WAL writer's delay (a fraction of a second), those rows read `sending` again and are sent again
    after the lease - a repeat the delivery id lets the receiver drop, never a lost reply. On SQLite (one
    connection for the whole process, which a batch must not hold) each group is one pooled transaction.
    Failed sends are rare and take their own transaction (the row is locked and the claim's token checked).
    """

    def __init__(self, dispatcher: OutboxDispatcher, claims: dict[int, int]) -> None:
        self.dispatcher = dispatcher
        self.claims = claims
        self.pending: list[tuple[OutboundEnvelope, _Outcome, asyncio.Future[None]]] = []
        self.idle = asyncio.Event()  # no write on its way
        self.idle.set()
        self.writer: asyncio.Task[None] | None = None  # only when a writing caller was cancelled with work left
        engine = dispatcher.sessionmaker.kw.get("bind")
        self.engine: AsyncEngine | None = (
            engine if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql" else None)
        self.connection: AsyncConnection | None = None
        self.opening: asyncio.Task[AsyncConnection] | None = None

    async def record(self, envelope: OutboundEnvelope, outcome: _Outcome) -> None:
        """Write this outcome (with whatever else is waiting); returns once it is committed.

        The first caller to find no write on its way writes at once, in its own task (a task started for it would
        wait a turn of a busy event loop first), and goes on with what gathered meanwhile; the others wait."""
        if outcome.error is not None:
            await finish_even_if_cancelled(self.dispatcher._record([(envelope, outcome)], self.claims))
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((envelope, outcome, future))
        if self.idle.is_set():
            self.idle.clear()
            try:
                await self._write_all()
            finally:
                if self.pending:  # this writer was cancelled (a stop): the rest are written by a task of their own
                    self.writer = asyncio.create_task(self._write_rest(), name="outbox-recorder")
                else:
                    self.idle.set()
        # Not ours to cancel: a stop waits for the write rather than abandon it.
        await asyncio.shield(future)

    async def _write_rest(self) -> None:
        try:
            await self._write_all()
        finally:
            self.idle.set()

    async def _write_all(self) -> None:
        while self.pending:
            group, self.pending = self.pending, []
            await finish_even_if_cancelled(self._write_group(group))

    async def _write_group(self, group: list[tuple[OutboundEnvelope, _Outcome, asyncio.Future[None]]]) -> None:
        """One group, its waiters told the outcome (inside the shielded work: a write that committed is never
        reported as cancelled)."""
        outcomes = [(envelope, outcome) for envelope, outcome, _ in group]
        try:
            await self.dispatcher._record(outcomes, self.claims, write=functools.partial(self._write, outcomes))
        except Exception as exc:
            for _, _, future in group:
                if not future.done():
                    future.set_exception(exc)
        else:
            for _, _, future in group:
                if not future.done():
                    future.set_result(None)

    async def _write(self, group: list[tuple[OutboundEnvelope, _Outcome]]) -> None:
        if self.engine is None:
            await self.dispatcher._record_once(group, self.claims)
            return
        if self.connection is None:
            opening, self.opening = self.opening, None
            self.connection = await (opening if opening is not None else self._connect(self.engine))
        session = self.dispatcher.sessionmaker(bind=self.connection)
        try:
            await service.mark_sent(session, [(e, o.provider_id) for e, o in group])
        except BaseException:
            await session.close()
            await self._drop_connection(invalidate=True)  # the next try connects afresh
            raise
        await session.close()
        self.dispatcher.bus.publish_all(take_pending(session))
        self.dispatcher.stats.sent += len(group)

    def open(self) -> None:
        """On PostgreSQL, connect while the batch's first sends are on the wire: their answers find it ready."""
        if self.engine is not None:
            self.opening = asyncio.create_task(self._connect(self.engine), name="outbox-recorder-connect")

    @staticmethod
    async def _connect(engine: AsyncEngine) -> AsyncConnection:
        connection = await engine.connect()
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("SET synchronous_commit = off")
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()
            raise
        return connection

    async def close(self) -> None:
        """After the batch: the last write finishes, then the connection goes back to the pool as it came."""
        await self.idle.wait()  # a write on its way ends (a cancelled writer finishes its group first)
        opening, self.opening = self.opening, None
        if opening is not None:  # never used (no delivery in the batch)
            if not opening.done():
                opening.cancel()
            await asyncio.wait({opening})
            if not opening.cancelled() and opening.exception() is None:
                self.connection = opening.result()
        await self._drop_connection(invalidate=False)

    async def _drop_connection(self, *, invalidate: bool) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            if not invalidate:
                await connection.exec_driver_sql("RESET synchronous_commit")
        except Exception:
            invalidate = True
        if invalidate:
            with contextlib.suppress(Exception):
                await connection.invalidate()
        with contextlib.suppress(Exception):
            await connection.close()
