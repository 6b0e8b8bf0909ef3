"""The one registry every background job runs in: start, wake, health and a graceful stop with a deadline.

Every wait is on the injected clock, so tests move time instead of sleeping. What a job does when it fails is
the same for every job: its health records the error and the failures in a row, and it runs again after the one
backoff (exponential with jitter); a job with a lease stands by while another instance holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import SYSTEM_CLOCK, Clock
from core.db.lease import Lease, exclusive
from core.events import EventBus
from core.jobs.job import Job, JobContext, JobHealth, JobState

log = logging.getLogger(__name__)

LeaseFactory = Callable[[str], AbstractAsyncContextManager[Lease]]
_Outcome = Literal["done", "more", "standby", "failed"]


class JobRegistry:
    """The jobs of one process. `start(job)` runs a job at once; `stop()` ends them all (the app's shutdown)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, *, engine: AsyncEngine | None = None,
                 leases: LeaseFactory | None = None, bus: EventBus | None = None,
                 rng: Callable[[], float] = random.random) -> None:
        self.clock = clock
        tick_leases = leases
        if leases is None and engine is not None:
            bound = engine

            def leases(name: str) -> AbstractAsyncContextManager[Lease]:
                return exclusive(bound, name)

            def tick_leases(name: str) -> AbstractAsyncContextManager[Lease]:
                return exclusive(bound, name, brief=True)  # held for one tick: a pooled connection

        self._leases = leases
        self._tick_leases = tick_leases
        self._bus = bus
        self.rng = rng
        self._runners: dict[str, _Runner] = {}

    def start(self, job: Job) -> None:
        """Run `job` from now on (a stopped job of the same name is replaced)."""
        current = self._runners.get(job.name)
        if current is not None and current.task is not None and not current.task.done():
            raise ValueError(f"job {job.name!r} is already running")
        if job.lease is not None and self._leases is None:
            raise ValueError(f"job {job.name!r} needs a lease but the registry has no database to take it in")
        if job.wake_topics and self._bus is None:
            raise ValueError(f"job {job.name!r} is woken by events but the registry has no event bus")
        runner = _Runner(job, self)
        self._runners[job.name] = runner
        runner.task = asyncio.create_task(runner.run(), name=f"job:{job.name}")

    def wake(self, name: str) -> None:
        """Run the tick of job `name` now rather than at its scheduled time."""
        runner = self._runners.get(name)
        if runner is not None:
            runner.wake.set()

    async def stop(self, names: Iterable[str] | None = None, *, deadline: float = 10.0) -> None:
        """Stop these jobs (all without names): sleeping ones and bodies at once, a running tick is given until
        the `deadline` (seconds) to finish (unless it handles cancellation itself), then cancelled."""
        runners = [self._runners[n] for n in names if n in self._runners] if names is not None \
            else list(self._runners.values())
        tasks: list[asyncio.Task[None]] = []
        for runner in runners:
            runner.stopping = True
            runner.wake.set()
            if runner.task is None or runner.task.done():
                continue
            tasks.append(runner.task)
            if runner.job.body is not None or runner.job.cancel_on_stop or not runner.in_tick:
                runner.task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=deadline)
            for task in stuck:
                log.error("job did not stop in time", extra={"job": task.get_name()})
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("job ended with an error", extra={"job": task.get_name()}, exc_info=task.exception())

    def get(self, name: str) -> JobHealth | None:
        runner = self._runners.get(name)
        return runner.health if runner is not None else None

    def health(self) -> dict[str, dict[str, Any]]:
        """Every job's health (one shape), with what each job counts itself."""
        report: dict[str, dict[str, Any]] = {}
        for name, runner in sorted(self._runners.items()):
            entry = runner.health.as_dict()
            if runner.job.details is not None:
                try:
                    entry.update(runner.job.details())
                except Exception as exc:  # a report must never fail for one job's figures
                    entry["details_error"] = f"{type(exc).__name__}: {exc}"[:200]
            report[name] = entry
        return report

    def __iter__(self) -> Iterator[JobHealth]:
        return iter([runner.health for _, runner in sorted(self._runners.items())])


class _Runner:
    """Runs one job: its schedule, lease, backoff and health."""

    def __init__(self, job: Job, registry: JobRegistry) -> None:
        self.job = job
        self.clock = registry.clock
        self._registry = registry
        self.health = JobHealth(job.name, lease=job.lease)
        self.ctx = JobContext(job.name, registry.clock, self.health, self._changed)
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.in_tick = False
        self.wake = asyncio.Event()

    # --- health --------------------------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.job.on_change is not None:
            try:
                self.job.on_change(self.health)
            except Exception:
                log.exception("job health listener failed", extra={"job": self.job.name})

    def _set(self, state: JobState) -> None:
        if self.health.state != state:
            self.health.state = state
            self._changed()

    def _failed(self, exc: Exception) -> float:
        """Record a failure; returns how long to back off."""
        health = self.health
        health.failures += 1
        health.last_error = f"{type(exc).__name__}: {exc}"[:500]
        health.last_error_at = self.clock.now()
        delay = self.job.backoff.delay(health.failures, self._registry.rng)
        health.next_run = health.last_error_at + timedelta(seconds=delay)
        log.warning("job failed; backing off", exc_info=exc, extra={
            "job": self.job.name, "error": health.last_error[:200], "failures": health.failures,
            "delay": round(delay, 2)})
        health.state = "backing_off"
        self._changed()
        return delay

    def _started_run(self) -> None:
        now = self.clock.now()
        self.health.last_run = self.health.heartbeat = now
        self.health.runs += 1

    # --- waiting ---------------------------------------------------------------------------------------------

    async def _pause(self, seconds: float, *, wakeable: bool) -> None:
        """Wait on the clock; a wake (or a stop) ends the wait early when `wakeable`."""
        if self.stopping:
            return
        if not wakeable:
            await self.clock.sleep(seconds)
            return
        if self.wake.is_set():
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _listen(self, bus: EventBus) -> None:
        async with bus.subscribe(*self.job.wake_topics) as queue:
            while True:
                await queue.get()
                self.wake.set()

    # --- running ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        bus = self._registry._bus
        listener = asyncio.create_task(self._listen(bus)) if self.job.wake_topics and bus is not None else None
        try:
            if self.job.tick is not None:
                await self._ticks()
            else:
                await self._body()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            self.health.next_run = None
            self.health.lease_held = False
            self._set("stopped")

    async def _ticks(self) -> None:
        job, health = self.job, self.health
        health.next_run = job.schedule.first_run(self.clock.now())
        self._set("running")
        again = False
        while not self.stopping:
            if again:
                await asyncio.sleep(0)  # more is waiting: straight on, no gathering pause
            else:
                wait = (health.next_run - self.clock.now()).total_seconds() if health.next_run else 0.0
                await self._pause(wait, wakeable=health.state != "backing_off")
                if self.stopping:
                    break
                if self.wake.is_set():
                    self.wake.clear()  # a wake that arrives during the tick is kept: the next wait ends at once
                    if job.gather_seconds > 0:
                        await self.clock.sleep(job.gather_seconds)
            outcome = await self._tick()
            again = outcome == "more"
            now = self.clock.now()
            if outcome == "failed":
                continue  # _failed set next_run and the state
            if outcome == "standby":
                health.failures = 0  # nothing is wrong: another instance runs it
                health.next_run = now + timedelta(seconds=job.standby_seconds)
                self._set("standby")
                continue
            health.next_run = now if outcome == "more" else job.schedule.next_run(now)
            self._set("running")

    async def _tick(self) -> _Outcome:
        tick = self.job.tick
        if tick is None:
            raise RuntimeError("not a tick job")
        self._started_run()
        self.in_tick = True
        try:
            if self.job.lease is not None and self._registry._tick_leases is not None:
                async with self._registry._tick_leases(self.job.lease) as lease:
                    if not lease.held:
                        return "standby"
                    self.health.lease_held, self.ctx.lease = True, lease
                    try:
                        more = await tick(self.ctx)
                    finally:
                        self.health.lease_held, self.ctx.lease = False, None
            else:
                more = await tick(self.ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            return "failed"
        finally:
            self.in_tick = False
        self.health.failures = 0
        self.health.last_success = self.health.heartbeat = self.clock.now()
        return "more" if more else "done"

    async def _body(self) -> None:
        job, health = self.job, self.health
        body = job.body
        if body is None:
            raise RuntimeError("not a body job")
        while not self.stopping:
            standby = False
            self._started_run()
            health.next_run = None
            try:
                if job.lease is not None and self._registry._leases is not None:
                    async with self._registry._leases(job.lease) as lease:
                        if lease.held:
                            health.lease_held, self.ctx.lease = True, lease
                            self._set("running")
                            try:
                                await body(self.ctx)
                            finally:
                                health.lease_held, self.ctx.lease = False, None
                        else:
                            standby = True
                else:
                    self._set("running")
                    await body(self.ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    break
                delay = self._failed(exc)
                await self._pause(delay, wakeable=False)
                continue
            if standby:
                health.failures = 0  # nothing is wrong: another instance runs it
                health.next_run = self.clock.now() + timedelta(seconds=job.standby_seconds)
                self._set("standby")
                await self._pause(job.standby_seconds, wakeable=True)
                self.wake.clear()
                continue
            health.last_success = self.clock.now()
            break  # the body is done
