"""The KPI fold: keeps the per-ticket facts, the rollups and the hourly volumes up to date, off the ingest path.

Every few seconds one leased tick reads what changed since its cursors, recomputes the facts of the tickets
concerned from their current state, takes each ticket's old contribution out of the rollups and puts the new one
in, all in one transaction with the cursors. Nothing on the ingest or ticket-change path writes here.

What changes a ticket's figures leaves a row with an increasing id behind: a message (a new ticket, a customer
writing again, a reopening, an escalation decision, an agent's reply, a survey button) or an audit entry (status,
assignment, transfer, priority, merge, bot resolution, survey sent/answered, SLA breach). So the cursors are the
last message id and the last audit id seen. Ids are handed out before their transactions commit, so an id below
the cursor may still appear: the ids skipped over are kept as "holes" and looked at again on every tick until they
show up or HOLE_TTL has passed (a rolled-back insert leaves its id unused for ever). Recomputing a ticket is
idempotent (its facts are a function of its current state), so seeing a change twice costs time, never accuracy.

A rebuild (`switchboard reports rebuild`, or the first run on a database with tickets) walks every ticket in id
order in chunks, one transaction each, remembering where it got to: interrupted, it goes on from there. Its
cursors are taken before it starts, so changes made meanwhile are folded in afterwards.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.clock import SYSTEM_CLOCK, Clock
from core.jobs import Backoff, Every, Job, JobContext
from core.kpis import repository
from core.kpis.facts import COUNTERS, Cell, Histogram, TicketFacts, bucket_of, contributions
from core.kpis.models import KpiState, KpiTicketFacts
from core.kpis.service import DEFAULT_CSAT_LOW, STATE_NAME, compute_facts
from core.tickets.models import Message

log = logging.getLogger(__name__)

JOB_NAME = "kpi-fold"
HOLE_TTL = timedelta(minutes=10)
MAX_HOLES = 20_000
# Ids this far below the newest at a rebuild's start are read again after it (transactions still in flight then).
REBUILD_MARGIN = 1000
HOURLY_DIMENSIONS = ("intent", "channel", "queue")

RollupKey = tuple[str, date, str, str]  # grain, period, dimension, key
HourlyKey = tuple[str, datetime, str]  # dimension, hour, key


# -- facts <-> rows -----------------------------------------------------------------------------------------------


def facts_row(f: TicketFacts) -> dict[str, Any]:
    return {
        "ticket_id": f.ticket_id, "created_at": f.created_at, "day": f.day, "resolved_at": f.resolved_at,
        "resolved_day": f.resolved_day, "channel": f.channel, "queue_id": f.queue_id, "agent_id": f.agent_id,
        "intent": f.intent, "resolved": f.resolved, "reopened": f.reopened, "fcr": f.fcr, "contained": f.contained,
        "handoff": f.handoff, "complaint": f.complaint, "frt_s": f.frt_s, "res_s": f.res_s, "sla_fr": f.sla_fr,
        "sla_res": f.sla_res, "csat_sent": f.csat_sent, "csat_score": f.csat_score, "csat_low": f.csat_low,
        "escalations": [[at.astimezone(UTC).isoformat(), reason] for at, reason in f.escalations],
    }


def facts_of_row(row: KpiTicketFacts) -> TicketFacts:
    return TicketFacts(
        ticket_id=row.ticket_id, created_at=row.created_at, day=row.day, resolved_day=row.resolved_day,
        resolved_at=row.resolved_at, channel=row.channel, queue_id=row.queue_id, agent_id=row.agent_id,
        intent=row.intent, resolved=row.resolved, reopened=row.reopened, fcr=row.fcr, contained=row.contained,
        handoff=row.handoff, complaint=row.complaint, frt_s=row.frt_s, res_s=row.res_s, sla_fr=row.sla_fr,
        sla_res=row.sla_res, csat_sent=row.csat_sent, csat_score=row.csat_score, csat_low=row.csat_low,
        escalations=tuple((datetime.fromisoformat(at), reason) for at, reason in row.escalations or ()),
    )


# -- contributions as deltas ----------------------------------------------------------------------------------------


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_contributions(f: TicketFacts) -> Iterable[tuple[HourlyKey, int, int]]:
    """((dimension, hour, key), tickets, escalations) the ticket adds to the hourly volumes."""
    keys = {"intent": f.intent or "", "channel": f.channel, "queue": "" if f.queue_id is None else str(f.queue_id)}
    created = _hour(f.created_at)
    for dimension in HOURLY_DIMENSIONS:
        yield (dimension, created, keys[dimension]), 1, 0
    for at, reason in f.escalations:
        hour = _hour(at)
        for dimension in HOURLY_DIMENSIONS:
            yield (dimension, hour, keys[dimension]), 0, 1
        yield ("escalation_reason", hour, reason), 1, 1


@dataclass
class Deltas:
    """What a batch of tickets changes in the rollups and the hourly volumes."""

    cells: dict[RollupKey, Cell] = field(default_factory=lambda: defaultdict(Cell))
    hourly: dict[HourlyKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, f: TicketFacts, sign: int) -> None:
        for day, dimension, key, cell in contributions(f):
            self.cells[("d", day, dimension, key)].add(cell, sign)
            self.cells[("m", day.replace(day=1), dimension, key)].add(cell, sign)
        for hkey, tickets, escalations in hourly_contributions(f):
            entry = self.hourly[hkey]
            entry[0] += sign * tickets
            entry[1] += sign * escalations


async def apply(session: AsyncSession, deltas: Deltas) -> None:
    """Add the deltas to the stored rows (inserted when missing, deleted when they come to nothing), a few
    statements for the whole batch."""
    changed = {k: c for k, c in deltas.cells.items() if not c.is_zero()}
    existing = {(r[0], r[1], r[2], r[3]): r for r in await repository.rollup_rows(session, changed)}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    deletes: list[RollupKey] = []
    for key, delta in changed.items():
        row = existing.get(key)
        if row is None:
            cell = Cell()
        else:
            cell = Cell([int(row[4 + i] or 0) for i in range(len(COUNTERS))],
                        frt=Histogram.from_bytes(row[4 + len(COUNTERS)]),
                        res=Histogram.from_bytes(row[5 + len(COUNTERS)]))
        cell.add(delta)
        if cell.is_zero():
            if row is not None:
                deletes.append(key)
            continue
        values = {"grain": key[0], "period": key[1], "dimension": key[2], "key": key[3], **cell.counters,
                  "frt": cell.frt.to_bytes(), "res": cell.res.to_bytes()}
        (inserts if row is None else updates).append(values)
    await repository.write_rollups(session, inserts, updates, deletes)

    hourly = {k: v for k, v in deltas.hourly.items() if v[0] or v[1]}
    stored = {(r[0], r[1], r[2]): (r[3], r[4]) for r in await repository.hourly_rows(session, hourly)}
    h_inserts: list[dict[str, Any]] = []
    h_updates: list[dict[str, Any]] = []
    h_deletes: list[HourlyKey] = []
    for hkey, (tickets, escalations) in hourly.items():
        old = stored.get(hkey)
        new = (tickets + (old[0] if old else 0), escalations + (old[1] if old else 0))
        if new == (0, 0):
            if old is not None:
                h_deletes.append(hkey)
            continue
        values = {"dimension": hkey[0], "hour": hkey[1], "key": hkey[2], "tickets": new[0], "escalations": new[1]}
        (h_inserts if old is None else h_updates).append(values)
    await repository.write_hourly(session, h_inserts, h_updates, h_deletes)


async def refold(session: AsyncSession, ticket_ids: Iterable[int], zone: ZoneInfo, csat_low: int) -> int:
    """Recompute these tickets' facts and move their contributions from the old facts to the new; how many
    tickets' facts changed."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return 0
    new = await compute_facts(session, ids, zone=zone, csat_low=csat_low)
    old_rows = await repository.facts_rows(session, ids)
    deltas = Deltas()
    changed: list[int] = []
    for ticket_id in ids:
        row = old_rows.get(ticket_id)
        old = facts_of_row(row) if row is not None else None
        fresh = new.get(ticket_id)
        if old == fresh:
            continue
        changed.append(ticket_id)
        if old is not None:
            deltas.add(old, -1)
        if fresh is not None:
            deltas.add(fresh, 1)
    if not changed:
        return 0
    await apply(session, deltas)
    # The facts rows go through Core statements: drop the loaded ones from the session first.
    for row in old_rows.values():
        session.expunge(row)
    await repository.delete_facts(session, changed)
    await repository.insert_facts(session, [facts_row(new[t]) for t in changed if t in new])
    return len(changed)


class _Accumulator:
    """A rebuild's running sums: plain lists and dicts, since it adds a million tickets (a Cell per add cost
    1.7 ms a ticket)."""

    def __init__(self) -> None:
        # (grain, period, dimension, key) -> [counters, frt {bucket: [n, sum]}, res {...}]
        self.cells: dict[RollupKey, list[Any]] = {}

    def add(self, key: RollupKey, nonzero: list[tuple[int, int]], frt: int | None, res: int | None) -> None:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [[0] * len(COUNTERS), {}, {}]
        values = cell[0]
        for i, v in nonzero:
            values[i] += v
        for slot, seconds in ((1, frt), (2, res)):
            if seconds is not None:
                entry = cell[slot].setdefault(bucket_of(seconds), [0, 0])
                entry[0] += 1
                entry[1] += seconds

    def merge_into(self, key: RollupKey, cell: list[Any]) -> None:
        target = self.cells.get(key)
        if target is None:
            self.cells[key] = [list(cell[0]), {b: list(e) for b, e in cell[1].items()},
                               {b: list(e) for b, e in cell[2].items()}]
            return
        target[0] = [a + b for a, b in zip(target[0], cell[0], strict=True)]
        for slot in (1, 2):
            for b, (n, total) in cell[slot].items():
                entry = target[slot].setdefault(b, [0, 0])
                entry[0] += n
                entry[1] += total

    def pop_before(self, grain: str, limit: date | None) -> list[tuple[RollupKey, list[Any]]]:
        keys = [k for k in self.cells if k[0] == grain and (limit is None or k[1] < limit)]
        return [(k, self.cells.pop(k)) for k in keys]


def _row_values(key: RollupKey, cell: list[Any]) -> dict[str, Any]:
    return {"grain": key[0], "period": key[1], "dimension": key[2], "key": key[3],
            **dict(zip(COUNTERS, cell[0], strict=True)),
            "frt": Histogram(cell[1]).to_bytes(), "res": Histogram(cell[2]).to_bytes()}


_INDEX = {name: i for i, name in enumerate(COUNTERS)}


def _nonzero(row: Any) -> list[tuple[int, int]]:
    """The counters a facts row adds to its creation day, as (index, value) pairs."""
    score = row.csat_score
    flags = (("tickets", True), ("resolved", row.resolved), ("ever_resolved", row.resolved or row.reopened),
             ("fcr", row.fcr), ("contained", row.contained), ("handoff", row.handoff), ("complaint", row.complaint),
             ("reopened", row.reopened), ("sla_fr_met", row.sla_fr is True), ("sla_fr_breached", row.sla_fr is False),
             ("sla_res_met", row.sla_res is True), ("sla_res_breached", row.sla_res is False),
             ("csat_sent", row.csat_sent), ("csat_responses", score is not None), ("csat_low", row.csat_low))
    out = [(_INDEX[name], 1) for name, on in flags if on]
    if score is not None:
        out += [(_INDEX["csat_sum"], score), (_INDEX[f"csat_{score}"], 1)]
    return out


async def build_rollups(session: AsyncSession) -> None:
    """A rebuild's second pass: the rollups and the hourly volumes, from scratch, from every facts row (the same
    sums as the fold's contributions, core/kpis/facts.py, added without the per-ticket objects).

    The facts stream in creation-day order, and a ticket adds only to its creation day or later (its resolution),
    so every day before the current one is complete and written out as the stream moves on: memory holds a day's
    and a month's cells (plus resolutions still to come), never the year's.
    """
    await repository.clear_rollups(session)
    acc = _Accumulator()
    hourly: dict[HourlyKey, list[int]] = defaultdict(lambda: [0, 0])
    pending: list[dict[str, Any]] = []
    resolved_out = [(_INDEX["resolved_out"], 1)]

    async def flush(before: date | None) -> None:
        for key, cell in acc.pop_before("d", before):
            acc.merge_into(("m", key[1].replace(day=1), key[2], key[3]), cell)
            pending.append(_row_values(key, cell))
        for key, cell in acc.pop_before("m", before.replace(day=1) if before is not None else None):
            pending.append(_row_values(key, cell))
        if len(pending) >= 2000 or before is None:
            await repository.write_rollups(session, pending, [], [])
            pending.clear()

    current: date | None = None
    async for row in repository.stream_facts(session):
        if row.day != current:
            await flush(row.day)
            current = row.day
        keys = (("all", ""), ("channel", row.channel), ("queue", "" if row.queue_id is None else str(row.queue_id)),
                ("agent", "" if row.agent_id is None else str(row.agent_id)), ("intent", row.intent or ""))
        nonzero = _nonzero(row)
        for dimension, key in keys:
            acc.add(("d", row.day, dimension, key), nonzero, row.frt_s, row.res_s)
            if row.resolved_day is not None:
                acc.add(("d", row.resolved_day, dimension, key), resolved_out, None, None)
        created = row.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for dimension, key in (keys[1], keys[2], keys[4]):
            hourly[(dimension, created, key)][0] += 1
        for at, reason in row.escalations or ():
            hour = datetime.fromisoformat(at).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            for dimension, key in keys[1:]:
                if dimension != "agent":
                    hourly[(dimension, hour, key)][1] += 1
            entry = hourly[("escalation_reason", hour, reason)]
            entry[0] += 1
            entry[1] += 1
    await flush(None)
    await repository.write_hourly(session, [
        {"dimension": k[0], "hour": k[1], "key": k[2], "tickets": v[0], "escalations": v[1]}
        for k, v in hourly.items() if v[0] or v[1]], [], [])


# -- cursors ------------------------------------------------------------------------------------------------------


@dataclass
class Cursor:
    """The last id seen of a source, and the ids below it not seen yet (with when they were first missed)."""

    hi: int = 0
    holes: dict[int, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: dict[str, Any] | None) -> Cursor:
        raw = raw or {}
        return cls(int(raw.get("hi", 0)),
                   {int(k): datetime.fromisoformat(v) for k, v in (raw.get("holes") or {}).items()})

    def as_json(self) -> dict[str, Any]:
        return {"hi": self.hi, "holes": {str(k): v.isoformat() for k, v in sorted(self.holes.items())}}

    def advance(self, seen: Iterable[int], now: datetime) -> None:
        seen = set(seen)
        for i in seen:
            self.holes.pop(i, None)
        newer = sorted(i for i in seen if i > self.hi)
        if newer:
            top = newer[-1]
            missing = top - self.hi - len(newer)
            if missing:
                # An id skipped over may belong to a transaction still in flight; a long run of them (a sequence
                # jump) is too many to wait for one by one.
                for i in range(self.hi + 1, min(top, self.hi + 1 + MAX_HOLES)):
                    if i not in seen:
                        self.holes[i] = now
            self.hi = top
        expired = [i for i, at in self.holes.items() if now - at > HOLE_TTL]
        for i in expired:
            del self.holes[i]
        if len(self.holes) > MAX_HOLES:
            for i in sorted(self.holes)[:len(self.holes) - MAX_HOLES]:
                del self.holes[i]


def _ticket_ids_of_audit(rows: Sequence[tuple[int, str, str, str, dict[str, Any]]]) -> set[int]:
    out: set[int] = set()
    for _, action, entity_type, entity_id, data in rows:
        if entity_type != "ticket":
            continue
        if entity_id.isdigit():
            out.add(int(entity_id))
        if action == "ticket.merge" and isinstance(data.get("source_id"), int):
            out.add(data["source_id"])
    return out


# -- the job ------------------------------------------------------------------------------------------------------


@dataclass
class FoldStats:
    ticks: int = 0
    folded: int = 0  # ticket facts changed
    rebuilt: int = 0  # tickets walked by a rebuild
    last_batch: int = 0


Progress = Callable[[int, int], None]


class KpiFold:
    """The KPI job: folds changes in every few seconds under a lease; also runs rebuilds."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock = SYSTEM_CLOCK, *,
                 time_zone: str, csat_low: int = DEFAULT_CSAT_LOW, batch_size: int = 2000,
                 rebuild_chunk: int = 2000) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.time_zone = time_zone
        self.csat_low = csat_low
        self.batch_size = batch_size
        self.rebuild_chunk = rebuild_chunk
        self.stats = FoldStats()
        self.state_zone: str | None = None

    def _initial(self, zone: str, message_hi: int, audit_hi: int) -> dict[str, Any]:
        return {"time_zone": zone, "mode": "facts", "rebuild_after": 0, "as_of": None,
                "messages": Cursor(max(0, message_hi - REBUILD_MARGIN)).as_json(),
                "audit": Cursor(max(0, audit_hi - REBUILD_MARGIN)).as_json()}

    async def _state(self, session: AsyncSession) -> KpiState:
        message_hi = await repository.max_id(session, Message.id)
        audit_hi = await repository.max_id(session, AuditEntry.id)
        return await repository.lock_state(session, STATE_NAME, self._initial(self.time_zone, message_hi, audit_hi),
                                           self.clock.now())

    async def run_once(self) -> bool:
        """One tick in one transaction: a step of a rebuild, or one batch of changes. True: more is waiting."""
        started = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            state = await self._state(session)
            data = dict(state.data)
            self.state_zone = data.get("time_zone") or self.time_zone
            zone = ZoneInfo(self.state_zone)
            mode = data.get("mode")
            if mode == "facts":
                more = await self._facts_chunk(session, data, zone)
            elif mode == "rollups":
                await build_rollups(session)
                data["mode"] = "fold"
                data["rebuilt_at"] = started.isoformat()
                more = True  # fold what changed during the rebuild at once
            else:
                more = await self._fold_changes(session, data, zone, started)
            state.data = data
            state.updated_at = started
        self.stats.ticks += 1
        return more

    async def _facts_chunk(self, session: AsyncSession, data: dict[str, Any], zone: ZoneInfo) -> bool:
        """A rebuild's first pass: the facts of the next chunk of tickets (the rollups come after, from them)."""
        ids = await repository.tickets_after(session, int(data.get("rebuild_after") or 0), self.rebuild_chunk)
        if ids:
            facts = await compute_facts(session, ids, zone=zone, csat_low=self.csat_low)
            await repository.delete_facts(session, ids)
            await repository.insert_facts(session, [facts_row(facts[i]) for i in ids if i in facts])
            data["rebuild_after"] = ids[-1]
            self.stats.rebuilt += len(ids)
        if len(ids) < self.rebuild_chunk:
            data["mode"] = "rollups"
            data.pop("rebuild_after", None)
        return True

    async def _fold_changes(self, session: AsyncSession, data: dict[str, Any], zone: ZoneInfo,
                            started: datetime) -> bool:
        messages, audit = Cursor.of(data.get("messages")), Cursor.of(data.get("audit"))
        messages_hi, audit_hi = messages.hi, audit.hi
        message_rows = await repository.new_messages(session, messages.hi, list(messages.holes), self.batch_size)
        audit_rows = await repository.new_audit(session, audit.hi, list(audit.holes), self.batch_size)
        ticket_ids = {t for _, t in message_rows} | _ticket_ids_of_audit(audit_rows)
        folded = await refold(session, ticket_ids, zone, self.csat_low)
        messages.advance((i for i, _ in message_rows), started)
        audit.advance((r[0] for r in audit_rows), started)
        data["messages"], data["audit"] = messages.as_json(), audit.as_json()
        more = (sum(1 for i, _ in message_rows if i > messages_hi) >= self.batch_size
                or sum(1 for r in audit_rows if r[0] > audit_hi) >= self.batch_size)
        if not more:
            data["as_of"] = started.isoformat()
        self.stats.folded += folded
        self.stats.last_batch = len(ticket_ids)
        return more

    async def tick(self, ctx: JobContext) -> bool:
        return await self.run_once()

    def job(self, every_seconds: float) -> Job:
        """Leased: one instance folds at a time (the state row's lock would make a second one wait, not double)."""
        return Job(JOB_NAME, tick=self.tick, schedule=Every(every_seconds), lease=JOB_NAME,
                   standby_seconds=every_seconds, backoff=Backoff(initial=every_seconds, maximum=300),
                   details=self.details)

    def details(self) -> dict[str, Any]:
        return {"folded": self.stats.folded, "rebuilt": self.stats.rebuilt, "ticks": self.stats.ticks,
                "time_zone": self.state_zone, "configured_time_zone": self.time_zone,
                "rebuild_needed": self.state_zone is not None and self.state_zone != self.time_zone}

    # -- rebuild ------------------------------------------------------------------------------------------------

    async def start_rebuild(self, *, resume: bool = True) -> tuple[bool, int]:
        """Put the state in rebuild mode in the configured time zone, the tables emptied (a rebuild already under
        way in that zone goes on, when `resume`). Returns (resumed, tickets in the database)."""
        async with self.sessionmaker() as session, session.begin():
            state = await self._state(session)
            data = dict(state.data)
            total = await repository.count_tickets(session)
            if resume and data.get("mode") in ("facts", "rollups") and data.get("time_zone") == self.time_zone:
                return True, total
            message_hi = await repository.max_id(session, Message.id)
            audit_hi = await repository.max_id(session, AuditEntry.id)
            await repository.clear_all(session)
            state.data = self._initial(self.time_zone, message_hi, audit_hi)
            state.updated_at = self.clock.now()
        return False, total

    async def rebuild(self, *, resume: bool = True, progress: Progress | None = None) -> int:
        """Rebuild every aggregate from the tickets (chunk by chunk, each committed: resumable), then fold what
        changed meanwhile. Returns the tickets walked. `progress(done, total)` after each chunk."""
        resumed, total = await self.start_rebuild(resume=resume)
        base = 0
        if resumed:
            async with self.sessionmaker() as session:
                state = await repository.read_state(session, STATE_NAME)
                after = int(state.data.get("rebuild_after") or 0) if state is not None else 0
                base = await repository.count_tickets(session, upto=after)
        walked = self.stats.rebuilt
        while True:
            async with self.sessionmaker() as session:
                state = await repository.read_state(session, STATE_NAME)
                if state is None or state.data.get("mode") not in ("facts", "rollups"):
                    break
            await self.run_once()
            if progress is not None:
                progress(min(total, base + self.stats.rebuilt - walked), total)
        while await self.run_once():
            pass
        return self.stats.rebuilt - walked
