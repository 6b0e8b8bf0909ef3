"""What one ticket contributes to the KPI figures, and the additive cells those contributions sum into.

A ticket's facts are computed from its current state (ticket, messages, SLA clock, survey). Everything it
contributes counts to the local day it was created (in the report time zone), except `resolved_out`, which counts
to the day of its (latest) resolution and is what backlog subtracts. Because a contribution is a pure function of
the facts, the rollups stay exact under "old contribution out, new in", in any order, any number of times.

Durations are kept in histograms, since percentiles cannot be summed: whole seconds are exact below
EXACT_BELOW seconds; above, a bucket spans 1/64 of its value (relative width ~1.6%). Each bucket keeps its count
and the sum of its values, and a percentile reports the nearest-rank bucket's mean: exact whenever that bucket
holds one distinct value, else within the bucket's width.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

EXACT_BELOW = 300
_GROWTH = 1.0 + 1.0 / 64
_LOG_GROWTH = math.log(_GROWTH)

# The dimensions rollups are kept for; "all" is the whole (key "").
DIMENSIONS = ("all", "channel", "queue", "agent", "intent")

COUNTERS = (
    "tickets", "resolved", "ever_resolved", "fcr", "contained", "handoff", "complaint", "reopened",
    "sla_fr_met", "sla_fr_breached", "sla_res_met", "sla_res_breached",
    "csat_sent", "csat_responses", "csat_sum", "csat_1", "csat_2", "csat_3", "csat_4", "csat_5", "csat_low",
    "resolved_out",
)
HISTOGRAMS = ("frt", "res")


BUCKETS = EXACT_BELOW + 800
"""Buckets in all: the last one (from about 2.3 years) takes every longer duration."""


def bucket_of(seconds: int) -> int:
    """The histogram bucket of a duration in whole seconds (negative clocks count as 0)."""
    if seconds < EXACT_BELOW:
        return max(0, seconds)
    return min(BUCKETS - 1, EXACT_BELOW + int(math.log(seconds / EXACT_BELOW) / _LOG_GROWTH))


@dataclass(frozen=True)
class TicketFacts:
    """One ticket as the KPI figures see it (the narrow row core/kpis keeps per ticket)."""

    ticket_id: int
    created_at: datetime
    day: date  # local creation day
    resolved_day: date | None  # local day of the latest resolution, while resolved
    resolved_at: datetime | None
    channel: str
    queue_id: int | None
    agent_id: int | None
    intent: str | None
    resolved: bool
    reopened: bool
    fcr: bool
    contained: bool
    handoff: bool
    complaint: bool
    frt_s: int | None  # first reply by a person, business or wall-clock seconds
    res_s: int | None  # creation to resolution, same seconds
    sla_fr: bool | None  # first-response target met (True), breached (False), neither yet / none (None)
    sla_res: bool | None
    csat_sent: bool
    csat_score: int | None
    csat_low: bool
    # (moment, reason) of each decision to hand the ticket to people (hourly escalation counts).
    escalations: tuple[tuple[datetime, str], ...] = ()

    def keys(self) -> dict[str, str]:
        """The ticket's key in each dimension ("" for none)."""
        return {"all": "", "channel": self.channel, "queue": _key(self.queue_id), "agent": _key(self.agent_id),
                "intent": self.intent or ""}

    def counters(self) -> dict[str, int]:
        """What it adds to its creation day's cells (without `resolved_out`, which goes to its resolution day)."""
        score = self.csat_score
        out = {
            "tickets": 1, "resolved": int(self.resolved), "ever_resolved": int(self.resolved or self.reopened),
            "fcr": int(self.fcr), "contained": int(self.contained), "handoff": int(self.handoff),
            "complaint": int(self.complaint), "reopened": int(self.reopened),
            "sla_fr_met": int(self.sla_fr is True), "sla_fr_breached": int(self.sla_fr is False),
            "sla_res_met": int(self.sla_res is True), "sla_res_breached": int(self.sla_res is False),
            "csat_sent": int(self.csat_sent), "csat_responses": int(score is not None), "csat_sum": score or 0,
            "csat_low": int(self.csat_low),
        }
        for s in range(1, 6):
            out[f"csat_{s}"] = int(score == s)
        return out


def _key(value: int | None) -> str:
    return "" if value is None else str(value)


ENTRY = np.dtype([("b", "<u2"), ("n", "<i4"), ("s", "<i8")])
"""One histogram bucket as stored: bucket, count, sum of seconds (14 bytes, little-endian)."""


@dataclass
class Histogram:
    """bucket -> [count, sum of seconds] (sparse; stored packed, see ENTRY)."""

    buckets: dict[int, list[int]] = field(default_factory=dict)

    def add(self, seconds: int, sign: int = 1) -> None:
        b = bucket_of(seconds)
        entry = self.buckets.setdefault(b, [0, 0])
        entry[0] += sign
        entry[1] += sign * seconds
        if entry[0] == 0:
            del self.buckets[b]

    def merge(self, other: Histogram, sign: int = 1) -> None:
        for b, (n, s) in other.buckets.items():
            entry = self.buckets.setdefault(b, [0, 0])
            entry[0] += sign * n
            entry[1] += sign * s
            if entry[0] == 0:
                del self.buckets[b]

    def to_bytes(self) -> bytes:
        items = sorted(self.buckets.items())
        packed = np.empty(len(items), dtype=ENTRY)
        if items:
            packed["b"] = [b for b, _ in items]
            packed["n"] = [n for _, (n, _) in items]
            packed["s"] = [s for _, (_, s) in items]
        return packed.tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Histogram:
        hist = cls()
        if raw:
            packed = np.frombuffer(raw, dtype=ENTRY)
            hist.buckets = {int(b): [int(n), int(s)] for b, n, s in packed.tolist()}
        return hist

    def percentile(self, p: float) -> float | None:
        dense = Dense()
        dense.add_histogram(self)
        return dense.percentile(p)


class Dense:
    """A histogram as two dense arrays (counts, sums) over every bucket: what reports sum many stored ones into."""

    __slots__ = ("counts", "sums")

    def __init__(self) -> None:
        self.counts = np.zeros(BUCKETS, dtype=np.int64)
        self.sums = np.zeros(BUCKETS, dtype=np.int64)

    def add_bytes(self, raw: bytes | None) -> None:
        if raw:
            packed = np.frombuffer(raw, dtype=ENTRY)
            index = packed["b"].astype(np.intp)
            self.counts[index] += packed["n"]  # a stored histogram has each bucket once
            self.sums[index] += packed["s"]

    def add_histogram(self, hist: Histogram) -> None:
        for b, (n, s) in hist.buckets.items():
            self.counts[b] += n
            self.sums[b] += s

    def add(self, other: Dense) -> None:
        self.counts += other.counts
        self.sums += other.sums

    def percentile(self, p: float) -> float | None:
        """Nearest rank: the value at rank ceil(p * n) (the mean of the bucket it falls in)."""
        total = int(self.counts.sum())
        if total <= 0:
            return None
        rank = max(1, math.ceil(p * total - 1e-9))
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        return round(int(self.sums[b]) / int(self.counts[b]), 1)


class Cell:
    """The additive figures of one group: counters (in COUNTERS order) plus the two duration histograms."""

    __slots__ = ("frt", "res", "values")

    def __init__(self, values: list[int] | None = None, frt: Histogram | None = None,
                 res: Histogram | None = None) -> None:
        self.values = values if values is not None else [0] * len(COUNTERS)
        self.frt = frt if frt is not None else Histogram()
        self.res = res if res is not None else Histogram()

    @property
    def counters(self) -> dict[str, int]:
        return dict(zip(COUNTERS, self.values, strict=True))

    def add(self, other: Cell, sign: int = 1) -> None:
        if sign == 1:
            self.values = [a + b for a, b in zip(self.values, other.values, strict=True)]
        else:
            self.values = [a + sign * b for a, b in zip(self.values, other.values, strict=True)]
        if other.frt.buckets:
            self.frt.merge(other.frt, sign)
        if other.res.buckets:
            self.res.merge(other.res, sign)

    def is_zero(self) -> bool:
        return not any(self.values) and not self.frt.buckets and not self.res.buckets


_RESOLVED_OUT = COUNTERS.index("resolved_out")


def contributions(facts: TicketFacts) -> Iterator[tuple[date, str, str, Cell]]:
    """(day, dimension, key, cell) of everything the ticket adds to the rollups."""
    keys = facts.keys()
    counters = facts.counters()
    created = Cell([counters.get(name, 0) for name in COUNTERS])
    if facts.frt_s is not None:
        created.frt.add(facts.frt_s)
    if facts.res_s is not None:
        created.res.add(facts.res_s)
    for dimension in DIMENSIONS:
        yield facts.day, dimension, keys[dimension], created
    if facts.resolved_day is not None:
        out = Cell()
        out.values[_RESOLVED_OUT] = 1
        for dimension in DIMENSIONS:
            yield facts.resolved_day, dimension, keys[dimension], out


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator > 0 else None


class Sum:
    """What a report adds up for one group: counters and dense histograms."""

    __slots__ = ("counters", "frt", "res")

    def __init__(self) -> None:
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.frt = Dense()
        self.res = Dense()

    def add_row(self, counters: Iterator[tuple[str, int]] | Mapping[str, int], frt: bytes | None,
                res: bytes | None) -> None:
        items = counters.items() if isinstance(counters, Mapping) else counters
        for name, value in items:
            self.counters[name] += int(value or 0)
        self.frt.add_bytes(frt)
        self.res.add_bytes(res)

    def add(self, other: Sum) -> None:
        for name, value in other.counters.items():
            self.counters[name] += value
        self.frt.add(other.frt)
        self.res.add(other.res)


def figures(cell: Sum, backlog: int) -> dict[str, Any]:
    """The report fields of a group's sum (KpiRow's fields without key/label)."""
    c = cell.counters
    responses = c["csat_responses"]
    return {
        "tickets": c["tickets"],
        "resolved": c["resolved"],
        "first_response_median_s": cell.frt.percentile(0.5),
        "first_response_p90_s": cell.frt.percentile(0.9),
        "resolution_median_s": cell.res.percentile(0.5),
        "resolution_p90_s": cell.res.percentile(0.9),
        "fcr_rate": _rate(c["fcr"], c["resolved"]),
        "containment_rate": _rate(c["contained"], c["tickets"]),
        "handoff_rate": _rate(c["handoff"], c["tickets"]),
        "complaint_rate": _rate(c["complaint"], c["tickets"]),
        "sla_first_response_met_rate": _rate(c["sla_fr_met"], c["sla_fr_met"] + c["sla_fr_breached"]),
        "sla_resolution_met_rate": _rate(c["sla_res_met"], c["sla_res_met"] + c["sla_res_breached"]),
        "csat_avg": round(c["csat_sum"] / responses, 4) if responses else None,
        "csat_responses": responses,
        "reopen_rate": _rate(c["reopened"], c["ever_resolved"]),
        "backlog": backlog,
        "csat_distribution": {str(s): c[f"csat_{s}"] for s in range(1, 6)},
        "csat_surveys_sent": c["csat_sent"],
        "csat_response_rate": _rate(responses, c["csat_sent"]),
    }
