"""Typical problems: what appeals are about and how that changes, what suddenly rises, what the bot misses.

- Top intents and escalation reasons of a period with their change against the previous period of the same length,
  from the KPI engine's maintained hourly volumes (`core.kpis.service.totals`, summed by the database), never from
  a scan of tickets.
- Rising problems: an intent or a channel whose volume in the recent window is far above its usual volume for the
  same hours (the median over the previous days), with a minimum count; one alert per episode, resolved with
  hysteresis. `evaluate_rising` is run by a leased job (core/problems/job.py).
- Clusters of the customer messages the bot escalated without understanding them (core/problems/clusters.py),
  and making a cluster an intent through core.nlu_admin's service (the intents admin's own path).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.db.base import utcnow
from core.errors import PermissionDeniedError, ValidationFailedError
from core.events import ProblemAlertChanged, emit
from core.i18n import translator
from core.kpis import service as kpis
from core.nlu_admin import service as nlu_admin
from core.problems import repository
from core.problems.clusters import Text, cluster_texts
from core.problems.config import ProblemsSettings
from core.problems.models import NOT_UNDERSTOOD_REASONS, Dimension, ProblemAlert
from core.problems.schemas import (
    AlertPage,
    AlertRead,
    ClusterRead,
    ClusterReport,
    MadeIntent,
    MakeIntent,
    PeriodQuery,
    SampleRead,
    TopDimension,
    TopItem,
    TopQuery,
    TopReport,
)
from core.users.models import Role, User

EXAMPLE_SOURCE = "cluster"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day begins (a day starting in a DST gap begins at the first instant after it)."""
    return datetime.combine(day, day_time(0), tzinfo=zone).astimezone(ZoneInfo("UTC"))


def reason_label(reason: str | None, language: str) -> str:
    """An escalation reason (core/decision/policy.py) in words."""
    _ = translator(language)
    if reason is None:
        return _("problems.reason.none")
    return _.get(f"problems.reason.{reason}") or reason


# --- top intents and escalation reasons ----------------------------------------------------------------------


async def ticket_totals(session: AsyncSession, dimension: str, start: datetime, end: datetime
                        ) -> dict[str | None, int]:
    """Per key of `dimension` (intent, escalation_reason), the tickets of the whole UTC hours in [start's hour, end):
    the KPI engine's `totals` (summed by the database; a year is not loaded), keys with none left out."""
    found = await kpis.totals(session, dimension=dimension, start=start, end=end)
    return {key: tickets for key, (tickets, _escalations) in found.items() if tickets}


async def top(session: AsyncSession, query: TopQuery, *, time_zone: str, language: str = "en") -> TopReport:
    """The top keys of `query.dimension` in the period, each with its count, share and change against the
    previous period of the same length (from the KPI engine's hourly volumes, as its `counts` reads them)."""
    zone = ZoneInfo(time_zone)
    previous_from = query.date_from - timedelta(days=query.days)
    previous_to = query.date_from - timedelta(days=1)
    start, middle = local_midnight(previous_from, zone), local_midnight(query.date_from, zone)
    end = local_midnight(query.date_to + timedelta(days=1), zone)
    # Summed by the database over the KPI engine's hourly volumes: a year is 10^5 hourly rows per dimension.
    current = Counter(await ticket_totals(session, query.dimension.value, middle, end))
    previous = Counter(await ticket_totals(session, query.dimension.value, start, middle))
    total, previous_total = sum(current.values()), sum(previous.values())
    ranked = sorted((k for k, v in current.items() if v > 0), key=lambda k: (-current[k], k is None, k or ""))
    _ = translator(language)
    items = []
    for key in ranked[:query.limit]:
        count, before = current[key], previous[key]
        if query.dimension == TopDimension.escalation_reason:
            label = reason_label(key, language)
        else:
            label = key if key is not None else _("problems.no_intent")
        items.append(TopItem(key=key, label=label, count=count, share=round(count / total, 4) if total else 0.0,
                             previous=before, change=count - before,
                             change_pct=round((count - before) * 100 / before, 1) if before else None))
    others = sum(current[k] for k in ranked[query.limit:])
    return TopReport(dimension=query.dimension, date_from=query.date_from, date_to=query.date_to,
                     previous_from=previous_from, previous_to=previous_to, time_zone=time_zone, total=total,
                     previous_total=previous_total, items=items, others=others)


# --- rising problems -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Volume:
    """One key's window volume now and the usual volume of the same window on the previous days."""

    dimension: Dimension
    key: str
    count: int
    samples: tuple[float, ...]

    @property
    def usual(self) -> float:
        return float(statistics.median(self.samples)) if self.samples else 0.0

    @property
    def ratio(self) -> float:
        return self.count / max(self.usual, 1.0)


@dataclass
class RisingOutcome:
    raised: list[ProblemAlert] = field(default_factory=list)
    updated: list[ProblemAlert] = field(default_factory=list)
    resolved: list[ProblemAlert] = field(default_factory=list)


async def volumes(session: AsyncSession, dimension: Dimension, now: datetime, settings: ProblemsSettings
                  ) -> dict[str, Volume]:
    """Every key's ticket volume in the window (the last `rising_window_hours` hour buckets, the current one in
    part) and, for each of the previous `rising_baseline_days` days, the volume of the same hours, the current
    hour's bucket weighed by the part of it that has passed today (like with like). Read from the KPI engine's
    hourly volumes (core.kpis.service.hourly_tickets), only the (days + 1) x window hours it needs."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    passed = (now - hour).total_seconds() / 3600
    window = settings.rising_window_hours
    days = settings.rising_baseline_days
    wanted = [hour - timedelta(days=d, hours=h) for d in range(days + 1) for h in range(window)]
    per_key: dict[str, dict[datetime, int]] = defaultdict(dict)
    for (key, at), tickets in (await kpis.hourly_tickets(session, dimension.value, hours=wanted)).items():
        if key:  # tickets without an intent are no problem of their own
            per_key[key][at] = tickets
    found = {}
    for key, buckets in per_key.items():
        count = sum(buckets.get(hour - timedelta(hours=h), 0) for h in range(window))
        samples = []
        for d in range(1, days + 1):
            back = timedelta(days=d)
            full = sum(buckets.get(hour - back - timedelta(hours=h), 0) for h in range(1, window))
            samples.append(full + passed * buckets.get(hour - back, 0))
        found[key] = Volume(dimension, key, count, tuple(samples))
    return found


def is_rising(volume: Volume, settings: ProblemsSettings) -> bool:
    return volume.count >= settings.rising_min_count and volume.ratio >= settings.rising_ratio


def is_back_to_normal(volume: Volume, settings: ProblemsSettings) -> bool:
    return volume.count * 2 < settings.rising_min_count or volume.ratio < settings.rising_resolve_ratio


async def evaluate_rising(session: AsyncSession, settings: ProblemsSettings, now: datetime) -> RisingOutcome:
    """One evaluation: raise an alert for every intent or channel that rises and has no active alert, update the
    active ones, resolve those back to normal. Events go out after the caller's commit."""
    outcome = RisingOutcome()
    active = {(a.dimension, a.key): a for a in await repository.active_alerts_locked(session)}
    window_minutes = settings.rising_window_hours * 60
    for dimension in Dimension:
        current = await volumes(session, dimension, now, settings)
        for (dim, key), alert in active.items():
            if dim != dimension:
                continue
            volume = current.get(key) or Volume(dimension, key, 0, ())
            alert.evaluated_at, alert.count, alert.usual = now, volume.count, round(volume.usual, 2)
            alert.ratio = round(volume.ratio, 2)
            if is_back_to_normal(volume, settings):
                alert.resolved_at = now
                outcome.resolved.append(alert)
                continue
            if volume.count > alert.peak_count:
                alert.peak_count = volume.count
            alert.peak_ratio = max(alert.peak_ratio, alert.ratio)
            outcome.updated.append(alert)
        for key, volume in current.items():
            if (dimension, key) in active or not is_rising(volume, settings):
                continue
            ratio = round(volume.ratio, 2)
            alert_row = await repository.raise_alert(session, {
                "dimension": dimension, "key": key, "window_minutes": window_minutes, "raised_at": now,
                "evaluated_at": now, "raised_count": volume.count, "count": volume.count,
                "usual": round(volume.usual, 2), "ratio": ratio, "peak_count": volume.count, "peak_ratio": ratio})
            if alert_row is not None:
                outcome.raised.append(alert_row)
    await session.flush()
    changes: tuple[tuple[Literal["raised", "resolved"], list[ProblemAlert]], ...] = (
        ("raised", outcome.raised), ("resolved", outcome.resolved))
    for kind, alerts in changes:
        for alert in alerts:
            emit(session, ProblemAlertChanged.topic, ProblemAlertChanged(
                kind=kind, alert_id=alert.id, dimension=alert.dimension.value, key=alert.key, count=alert.count,
                usual=alert.usual, ratio=alert.ratio))
    return outcome


async def active_alerts(session: AsyncSession) -> list[AlertRead]:
    return [_alert(a) for a in await repository.active_alerts(session)]


async def alert_history(session: AsyncSession, *, since: datetime | None = None, before: int | None = None,
                        limit: int = 50) -> AlertPage:
    rows = await repository.alerts(session, since=since, before_id=before, limit=limit + 1)
    page = [_alert(a) for a in rows[:limit]]
    return AlertPage(items=page, next_before=page[-1].id if len(rows) > limit and page else None)


def _alert(alert: ProblemAlert) -> AlertRead:
    return AlertRead.model_validate({**{k: getattr(alert, k) for k in AlertRead.model_fields if k != "active"},
                                     "active": alert.resolved_at is None})


# --- clusters of what the bot did not understand -------------------------------------------------------------


async def clusters(session: AsyncSession, query: PeriodQuery, settings: ProblemsSettings, *, time_zone: str
                   ) -> ClusterReport:
    """The clusters of the period's most recent not-understood messages (at most `clusters_max_messages`), biggest
    first, with what was made of them already."""
    zone = ZoneInfo(time_zone)
    start, end = local_midnight(query.date_from, zone), local_midnight(query.date_to + timedelta(days=1), zone)
    rows = await repository.not_understood(session, start, end, settings.clusters_max_messages)
    total = len(rows)
    if total >= settings.clusters_max_messages:  # how many there are: the KPI engine's escalation volumes say
        reasons = await ticket_totals(session, "escalation_reason", start, end)
        total = max(total, sum(reasons.get(r, 0) for r in NOT_UNDERSTOOD_REASONS))
    texts = [Text(message_id=i, text=t, created_at=c) for i, t, c in rows]
    began = time.perf_counter()
    found = await asyncio.to_thread(cluster_texts, texts, distance=settings.clusters_distance,
                                    min_size=settings.clusters_min_size) if texts else []
    seconds = time.perf_counter() - began
    marks = await repository.handled(session, [i for c in found for i in c.message_ids])
    result = []
    for cluster in found:
        intents = Counter(marks[i].intent for i in cluster.message_ids if i in marks)

        def sample(s: object) -> SampleRead:
            read = SampleRead.model_validate(s, from_attributes=True)
            mark = marks.get(read.message_id)
            read.handled_intent = mark.intent if mark else None
            return read

        result.append(ClusterRead(
            key=cluster.key, size=cluster.size, terms=cluster.terms, samples=[sample(s) for s in cluster.samples],
            choices=[sample(s) for s in cluster.choices], message_ids=cluster.message_ids,
            first_at=cluster.first_at, last_at=cluster.last_at,
            handled_intent=intents.most_common(1)[0][0] if intents else None, handled=sum(intents.values())))
    return ClusterReport(date_from=query.date_from, date_to=query.date_to, time_zone=time_zone, messages=total,
                         analysed=len(rows), capped=total > len(rows), clustered=sum(c.size for c in found),
                         seconds=round(seconds, 3), clusters=result)


async def make_intent(session: AsyncSession, body: MakeIntent, actor: User) -> MadeIntent:
    """The chosen texts become training examples of `body.intent` (created when it does not exist) through the
    intents admin's service, and every message of the cluster is marked handled. Admins only."""
    if actor.role.rank < Role.admin.rank:
        raise PermissionDeniedError("only admins make intents from clusters")
    name = nlu_admin.check_intent_name(body.intent.strip())
    chosen = list(dict.fromkeys(body.example_ids))
    if not chosen:
        raise ValidationFailedError("choose at least one text to become an example")
    everything = set(chosen) | set(body.message_ids)
    texts = await repository.not_understood_among(session, everything)
    strangers = sorted(everything - set(texts))
    if strangers:
        raise ValidationFailedError("only messages the bot escalated without understanding them can be used",
                                    message_ids=strangers[:20])
    created = name not in set(await nlu_admin.intent_names(session))
    if created:
        await nlu_admin.create_intent(session, name, body.description.strip(), actor)
    known = {e.text for e in (await nlu_admin.get_intent(session, name)).examples}
    added: list[str] = []
    skipped: list[str] = []
    examples: set[int] = set()
    for message_id in chosen:
        cleaned = " ".join(texts[message_id].split())
        if not cleaned or len(cleaned) > nlu_admin.MAX_EXAMPLE_CHARS or cleaned in known:
            skipped.append(cleaned)
            continue
        await nlu_admin.add_example(session, name, cleaned, actor, source=EXAMPLE_SOURCE)
        known.add(cleaned)
        added.append(cleaned)
        examples.add(message_id)
    now = utcnow()
    await repository.mark_handled(session, [
        {"message_id": i, "intent": name, "example": i in examples, "handled_by": actor.id, "handled_at": now}
        for i in sorted(everything)])
    audit.record(session, actor, "problems.cluster.intent", "intent", name, created=created,
                 examples=len(added), skipped=len(skipped), messages=len(everything))
    return MadeIntent(intent=name, created=created, examples_added=added, examples_skipped=skipped,
                      handled=len(everything))
