"""Prometheus metrics (served at /metrics).

Request metrics are counted by the middleware; what the app's services count themselves (ingest by channel and
action, quarantined payloads, group-commit batches, outbox deliveries) is read from their stats when /metrics
is scraped, so every channel is counted in one place: the ingest service they all go through.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.supervisor import read_state

if TYPE_CHECKING:
    from api.state import AppState

HTTP_REQUESTS = PromCounter("switchboard_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("switchboard_http_request_seconds", "HTTP request latency", ["route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


class _ServiceStats(Collector):
    """Sums the stats of the running apps (one in production; tests start several in one process)."""

    def __init__(self) -> None:
        self.states: weakref.WeakValueDictionary[int, AppState] = weakref.WeakValueDictionary()

    def collect(self) -> Iterator[Metric]:
        ingested = CounterMetricFamily("switchboard_messages_ingested", "Inbound messages ingested",
                                       labels=["channel", "action"])
        quarantined = CounterMetricFamily("switchboard_quarantined", "Channel payloads quarantined",
                                          labels=["channel"])
        batches = CounterMetricFamily("switchboard_ingest_batches", "Ingest transactions (group commits)")
        split = CounterMetricFamily("switchboard_ingest_split_batches",
                                    "Ingest batches that failed and were ingested one by one")
        outbox = CounterMetricFamily("switchboard_outbox_events", "Outbox deliveries", labels=["event"])
        counts: dict[str, dict[tuple[str, ...], float]] = {"ingested": {}, "quarantined": {}, "outbox": {}}
        totals = {"batches": 0, "split": 0}
        for state in list(self.states.values()):
            stats = state.ingest.stats
            for (channel, action), n in stats.ingested.items():
                counts["ingested"][(channel, action)] = counts["ingested"].get((channel, action), 0) + n
            for channel, n in stats.quarantined.items():
                counts["quarantined"][(channel,)] = counts["quarantined"].get((channel,), 0) + n
            totals["batches"] += stats.batches
            totals["split"] += stats.split_batches
            sent = state.dispatcher.stats
            for event, n in (("sent", sent.sent), ("failed_attempt", sent.failed_attempts), ("failed", sent.failed)):
                counts["outbox"][(event,)] = counts["outbox"].get((event,), 0) + n
        for labels, value in counts["ingested"].items():
            ingested.add_metric(list(labels), value)
        for labels, value in counts["quarantined"].items():
            quarantined.add_metric(list(labels), value)
        for labels, value in counts["outbox"].items():
            outbox.add_metric(list(labels), value)
        batches.add_metric([], totals["batches"])
        split.add_metric([], totals["split"])
        yield from (ingested, quarantined, batches, split, outbox)
        yield from self._processes()

    def _processes(self) -> Iterator[Metric]:
        """The supervisor's counts (serve --workers N): every worker reports the master's file."""
        paths = {s.settings.supervisor_state_file for s in list(self.states.values())} - {None}
        supervisor = read_state(next(iter(paths))) if paths else None
        if supervisor is None:
            return
        restarts = CounterMetricFamily("switchboard_worker_restarts",
                                       "Worker processes replaced by the supervisor, by reason", labels=["reason"])
        for reason in ("signal", "exit", "unresponsive"):
            restarts.add_metric([reason], float(supervisor.get("restarts_by_reason", {}).get(reason, 0)))
        workers = GaugeMetricFamily("switchboard_worker_processes", "Worker processes the supervisor keeps")
        workers.add_metric([], float(supervisor.get("workers") or 0))
        yield from (restarts, workers)


_SERVICES = _ServiceStats()
REGISTRY.register(_SERVICES)


def track(state: AppState) -> None:
    """Serve this app's service stats at /metrics while it runs (`untrack` at shutdown)."""
    _SERVICES.states[id(state)] = state


def untrack(state: AppState) -> None:
    """A stopped app's counts leave the sums at once, not whenever its state is garbage-collected."""
    _SERVICES.states.pop(id(state), None)
