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
from core.db.lease import held_leases

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
        yield from self._live(list(self.states.values()))
        yield from self._jobs(list(self.states.values()))
        yield from self._processes()

    @staticmethod
    def _jobs(states: list[AppState]) -> Iterator[Metric]:
        """Every background job of the running apps, from their registries (one shape for all)."""
        state_gauge = GaugeMetricFamily("switchboard_job_state", "Background jobs by state (1 for the job's state)",
                                        labels=["job", "state"])
        failures = GaugeMetricFamily("switchboard_job_failures_in_a_row", "Failures since the job last succeeded",
                                     labels=["job"])
        runs = CounterMetricFamily("switchboard_job_runs", "Runs (ticks, or starts of a long-running job)",
                                   labels=["job"])
        success = GaugeMetricFamily("switchboard_job_last_success_timestamp_seconds",
                                    "When the job last succeeded (Unix time)", labels=["job"])
        seen: dict[str, dict[str, float]] = {}
        for state in states:
            for health in state.jobs:
                entry = seen.setdefault(health.name, {"failures": 0, "runs": 0, "success": 0})
                entry[f"state:{health.state}"] = entry.get(f"state:{health.state}", 0) + 1
                entry["failures"] = max(entry["failures"], health.failures)
                entry["runs"] += health.runs
                if health.last_success is not None:
                    entry["success"] = max(entry["success"], health.last_success.timestamp())
        for name, entry in sorted(seen.items()):
            for job_state in ("running", "standby", "backing_off", "stopped"):
                state_gauge.add_metric([name, job_state], entry.get(f"state:{job_state}", 0))
            failures.add_metric([name], entry["failures"])
            runs.add_metric([name], entry["runs"])
            if entry["success"]:
                success.add_metric([name], entry["success"])
        yield from (state_gauge, failures, runs, success)

    @staticmethod
    def _live(states: list[AppState]) -> Iterator[Metric]:
        """The Redis bridge, live catch-ups, leases and the NLU model version of the running apps."""
        bridge = GaugeMetricFamily("switchboard_redis_bridge_state",
                                   "Redis event bridges by state (1 per instance; connected, starting or down)",
                                   labels=["state"])
        reconnects = CounterMetricFamily("switchboard_redis_bridge_reconnects",
                                         "Times the Redis bridge subscribed again after being down")
        events = CounterMetricFamily("switchboard_redis_bridge_events",
                                     "Live events through Redis: published, received, retried (a failed publish "
                                     "tried again), dropped (buffer full while Redis was down)", labels=["event"])
        resyncs = CounterMetricFamily("switchboard_live_catch_ups",
                                      "Times live views caught up from the database (events may have been missed)")
        leases = GaugeMetricFamily("switchboard_lease_held", "Leases this process holds (1 each)", labels=["lease"])
        model = GaugeMetricFamily("switchboard_nlu_model_loaded", "NLU model version each instance parses with",
                                  labels=["version", "in_sync"])
        by_state: dict[str, float] = {"connected": 0, "starting": 0, "down": 0}
        counts = {"published": 0, "received": 0, "retried": 0, "dropped": 0}
        total_reconnects = total_resyncs = 0
        versions: dict[tuple[str, str], float] = {}
        for state in states:
            if state.redis is not None:
                by_state[state.redis.state] = by_state.get(state.redis.state, 0) + 1
                total_reconnects += state.redis.reconnects
                for key in counts:
                    counts[key] += getattr(state.redis, key)
            if state.live is not None:
                total_resyncs += state.live.resyncs
            nlu = state.model_sync.health()
            label = (str(nlu["version"] or ""), "true" if nlu["in_sync"] else "false")
            versions[label] = versions.get(label, 0) + 1
        for name, value in by_state.items():
            bridge.add_metric([name], value)
        reconnects.add_metric([], total_reconnects)
        for name, value in counts.items():
            events.add_metric([name], value)
        resyncs.add_metric([], total_resyncs)
        for lease in held_leases():
            leases.add_metric([lease], 1)
        for labels, value in versions.items():
            model.add_metric(list(labels), value)
        yield from (bridge, reconnects, events, resyncs, leases, model)

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
