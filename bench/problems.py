"""Typical-problem analysis on a year of data, on PostgreSQL.

    .venv/bin/python bench/problems.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A private database (`sb_bench_problems_<random>`, created here and dropped at the end unless --keep) gets --tickets
tickets spread over the 365 days before now (more by day than by night) and --messages messages (the customer's
first message carrying the bot's decision, the bot's answer, more messages of the conversation), in bulk with COPY:
20 intents of Zipf-like popularity (and some with none), four channels, 40 % of the first messages escalated for
the policy's reasons, ~9 % of them not understood (low_confidence, nlu_unavailable) with texts written from 24 RU/EN
problem templates and some noise. The last two hours hold a spike of one intent (so the rising evaluation has
something to raise). The KPI engine's hourly volumes (kpi_hourly, what its fold keeps and `counts` reads) are written
with the data, as its fold would have counted them; --kpi-rebuild builds them with that engine's own rebuild instead
(core/kpis/fold.py: the same numbers, but over an hour at 1M tickets on this shared machine). Each of this feature's
reads then runs --runs times (the clusters --cluster-runs times), reporting p50/p95:

- top intents and top escalation reasons over 30 and 365 days (from the hourly counts, with the previous period);
- one rising-problem evaluation (intents and channels; its transaction rolled back so every run is the same);
- the alert list; the clusters of the not-understood messages over 30 and 365 days (the most recent
  --cluster-cap of the period: query + clustering, the clustering alone shown apart).

Target (issue 12, scope 5): every report < 1 s p95 over 30 and 365 days. The machine is shared: timings are noisy,
so each row is measured in alternation with the others, and the run prints the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import admin, raw_dsn  # noqa: E402 - after the path is set
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.kpis.fold import KpiFold  # noqa: E402
from core.problems import service as problems  # noqa: E402
from core.problems.config import ProblemsSettings  # noqa: E402
from core.problems.schemas import PeriodQuery, TopDimension, TopQuery  # noqa: E402

DEFAULT_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
ZONE = "Europe/Moscow"
INTENTS = ["internet_down", "billing_question", "tariff_change", "tv_not_working", "slow_internet", "order_status",
           "payment_not_received", "router_setup", "balance", "roaming", "sim_block", "number_port", "complaint",
           "contract_termination", "equipment_return", "office_hours", "human_handoff", "greeting", "mobile_data",
           "promised_payment"]
CHANNELS = [("telegram", 0.4), ("webchat", 0.3), ("email", 0.2), ("rest", 0.1)]
# The first message's decision: (action, reason, share).
DECISIONS = [("answer", "faq", 0.45), ("answer", "order_found", 0.08), ("answer", "order_number_missing", 0.04),
             ("escalate", "low_confidence", 0.07), ("escalate", "nlu_unavailable", 0.02),
             ("escalate", "needs_human", 0.12), ("escalate", "handoff", 0.09),
             ("escalate", "declared_escalate", 0.06), ("escalate", "repeated_question", 0.04),
             ("escalate", "declared_answer_and_escalate", 0.02), ("escalate", "no_self_service", 0.01)]
NOT_UNDERSTOOD = {"low_confidence", "nlu_unavailable"}
TEMPLATES = [
    "роутер мигает {red} что делать", "у меня {red} горит лампочка на роутере", "my router light is {red_en}",
    "не работает приставка {tv}", "приставка пишет нет сигнала {tv}", "tv box says no signal {tv_en}",
    "списали деньги {twice} за {month}", "почему списали {twice} абонплату", "you charged me {twice_en} this month",
    "как перенести номер к вам {from_op}", "хочу перейти со своим номером {from_op}", "port my number from {from_op}",
    "не приходят смс {code}", "не приходит код подтверждения {code}", "i do not get the sms code {code}",
    "домофон не работает {home}", "сломался домофон в подъезде {home}", "the intercom is broken {home}",
    "камера видеонаблюдения не показывает {home}", "нет изображения с камеры {home}",
    "где забрать посылку с роутером {city}", "курьер не привёз оборудование {city}",
    "сколько стоит перенос точки подключения {city}", "how much is moving my connection {city}"]
FILLERS = {"red": ["красным", "красный", "оранжевым"], "red_en": ["red", "blinking red", "orange"],
           "tv": ["", "второй день", "с утра"], "tv_en": ["", "since morning", "again"],
           "twice": ["дважды", "два раза", "повторно"], "twice_en": ["twice", "two times"],
           "month": ["ноябрь", "октябрь", "прошлый месяц"], "from_op": ["", "от другого оператора", "mts", "beeline"],
           "code": ["", "в банк", "с сайта"], "home": ["", "уже неделю", "в доме 5"],
           "city": ["", "в москве", "в казани", "moscow"]}
NOISE = ["ок", "???", "спасибо", "а", "test", "алло", "you there?", "эээ", "1", "."]


def pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def problem_text(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(NOISE)
    template = rng.choice(TEMPLATES)
    values = {k: rng.choice(v) for k, v in FILLERS.items()}
    return " ".join(template.format(**values).split())


def moment(rng: random.Random, start: datetime, days: int) -> datetime:
    """A moment in [start, start + days), busier by day (Moscow 09-21) than by night."""
    day = rng.randrange(days)
    hour = rng.choices(range(24), weights=[1 if (h + 3) % 24 < 8 else 4 for h in range(24)])[0]
    return start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))


async def fill(url: str, tickets: int, messages: int, now: datetime, seed: int, *, hourly_volumes: bool
               ) -> dict[str, int]:
    """Customers, tickets and messages by COPY, in chunks (and with `hourly_volumes` the KPI engine's hourly volumes
    of them); returns what was written."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(raw_dsn(url))
    written = {"tickets": 0, "messages": 0, "not_understood": 0}
    hourly: dict[tuple[str, datetime, str], list[int]] = {}

    def volume(dimension: str, at: datetime, key: str | None, tickets: int, escalations: int) -> None:
        cell = hourly.setdefault((dimension, at.replace(minute=0, second=0, microsecond=0), key or ""), [0, 0])
        cell[0] += tickets
        cell[1] += escalations

    try:
        start = (now - timedelta(days=365)).replace(minute=0, second=0, microsecond=0)
        customers = max(1, tickets // 3)
        await conn.copy_records_to_table("customers", columns=["id", "name", "language", "created_at", "updated_at"],
                                         records=[(i, f"Bench {i}", "ru", start, start)
                                                  for i in range(1, customers + 1)])
        intent_weights = [(name, 1.0 / (rank + 1)) for rank, name in enumerate(INTENTS)] + [(None, 0.4)]
        per_ticket = messages / tickets
        message_id = 0
        chunk = 50_000
        for first in range(1, tickets + 1, chunk):
            ticket_rows, message_rows = [], []
            for ticket_id in range(first, min(tickets + 1, first + chunk)):
                spike = ticket_id > tickets - 400  # the last 400: one intent in the last two hours
                created = (now - timedelta(seconds=rng.randrange(7200))) if spike else moment(rng, start, 365)
                channel = pick(rng, CHANNELS)
                action, reason = pick(rng, [((a, r), w) for a, r, w in DECISIONS])
                intent = "internet_down" if spike else (None if reason in NOT_UNDERSTOOD else pick(rng, intent_weights))
                resolved = created + timedelta(minutes=rng.randrange(5, 600))
                ticket_rows.append((ticket_id, rng.randrange(1, customers + 1), "", "resolved", "normal", intent,
                                    channel, "ru", 0, created, resolved, created, resolved, action == "answer", 0))
                text = problem_text(rng) if reason in NOT_UNDERSTOOD else f"вопрос про {intent or 'другое'}"
                # The KPI engine's hourly volumes as its fold keeps them (docs of core.kpis.service.counts).
                escalated = int(action == "escalate")
                volume("intent", created, intent, 1, escalated)
                volume("channel", created, channel, 1, escalated)
                if escalated:
                    volume("escalation_reason", created, reason, 1, 1)
                count = max(1, round(per_ticket + rng.uniform(-1, 1))) if ticket_id < tickets else \
                    max(1, messages - message_id)
                for n in range(count):
                    message_id += 1
                    at = created + timedelta(seconds=30 * n)
                    if n == 0:
                        extra = {"action": action, "reason": reason}
                        written["not_understood"] += reason in NOT_UNDERSTOOD
                        message_rows.append((message_id, ticket_id, "inbound", "customer", channel,
                                             f"b-{message_id}", text, "[]", intent, "[]", json.dumps(extra), at))
                    elif n % 2:
                        message_rows.append((message_id, ticket_id, "outbound", "bot", channel, None, "Ответ бота",
                                             "[]", intent, "[]", "{}", at))
                    else:
                        message_rows.append((message_id, ticket_id, "inbound", "customer", channel, f"b-{message_id}",
                                             "ещё вопрос", "[]", None, "[]",
                                             json.dumps({"action": "agent", "reason": "with_humans"}), at))
                    if message_id >= messages:
                        break
            await conn.copy_records_to_table("tickets", columns=[
                "id", "customer_id", "subject", "status", "priority", "intent", "channel", "language",
                "failed_bot_answers", "created_at", "updated_at", "last_customer_message_at", "resolved_at",
                "resolved_by_bot", "reopen_count"], records=ticket_rows)
            await conn.copy_records_to_table("messages", columns=[
                "id", "ticket_id", "direction", "author_kind", "channel", "external_message_id", "text", "attachments",
                "intent", "entities", "extra", "created_at"], records=message_rows)
            written["tickets"] += len(ticket_rows)
            written["messages"] += len(message_rows)
            print(f"  ... {written['tickets']:,} tickets, {written['messages']:,} messages", flush=True)
        if hourly_volumes:
            await conn.copy_records_to_table("kpi_hourly", columns=["dimension", "hour", "key", "tickets",
                                                                    "escalations"],
                                             records=[(*k, t, e) for k, (t, e) in hourly.items()])
        for table in ("customers", "tickets", "messages"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608  (constant names)
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return written


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    name = f"sb_bench_problems_{uuid.uuid4().hex[:8]}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await asyncio.to_thread(upgrade, url)
        now = datetime.now(UTC)
        began = time.perf_counter()
        written = await fill(url, args.tickets, args.messages, now, args.seed, hourly_volumes=not args.kpi_rebuild)
        fill_s = time.perf_counter() - began
        sessionmaker = create_sessionmaker(engine)
        rebuild = "hourly volumes written with the data (COPY)"
        if args.kpi_rebuild:
            began = time.perf_counter()
            fold = KpiFold(sessionmaker, time_zone=ZONE, rebuild_chunk=5000)
            while await fold.run_once():
                pass
            rebuild = f"KPI rebuild (kpi branch) {time.perf_counter() - began:.0f} s"
        print(f"COPY {fill_s:.0f} s; {rebuild}", flush=True)
        settings = ProblemsSettings(clusters_max_messages=args.cluster_cap)
        today = now.astimezone(ZoneInfo(ZONE)).date()

        def period(days: int) -> tuple[date, date]:
            return today - timedelta(days=days - 1), today

        async def top(days: int, dimension: TopDimension) -> Any:
            first, last = period(days)
            async with sessionmaker() as s:
                return await problems.top(s, TopQuery(date_from=first, date_to=last, dimension=dimension),
                                          time_zone=ZONE)

        async def rising() -> Any:
            async with sessionmaker() as s, s.begin():
                outcome = await problems.evaluate_rising(s, ProblemsSettings(), now)
                raised = [f"{a.dimension.value}:{a.key} x{a.ratio:g}" for a in outcome.raised]
                await s.rollback()
                return raised

        async def alerts() -> Any:
            async with sessionmaker() as s:
                return await problems.alert_history(s, limit=50)

        cluster_seconds: dict[int, list[float]] = {30: [], 365: []}

        async def clusters(days: int) -> Any:
            first, last = period(days)
            async with sessionmaker() as s:
                report = await problems.clusters(s, PeriodQuery(date_from=first, date_to=last), settings,
                                                 time_zone=ZONE)
            cluster_seconds[days].append(report.seconds)
            return report

        rows: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
            ("top intents, 30 days", lambda: top(30, TopDimension.intent), args.runs),
            ("top intents, 365 days", lambda: top(365, TopDimension.intent), args.runs),
            ("top escalation reasons, 30 days", lambda: top(30, TopDimension.escalation_reason), args.runs),
            ("top escalation reasons, 365 days", lambda: top(365, TopDimension.escalation_reason), args.runs),
            ("rising evaluation (intents + channels)", rising, args.runs),
            ("alert list (50)", alerts, args.runs),
            ("clusters, 30 days", lambda: clusters(30), args.cluster_runs),
            ("clusters, 365 days", lambda: clusters(365), args.cluster_runs),
        ]
        timings: dict[str, list[float]] = {label: [] for label, _, _ in rows}
        results: dict[str, Any] = {}
        for label, work, _ in rows:  # warm-up (not counted)
            results[label] = await work()
        for round_no in range(max(n for _, _, n in rows)):
            for label, work, n in rows:  # alternate, so a noisy neighbour hurts every row alike
                if round_no < n:
                    t0 = time.perf_counter()
                    await work()
                    timings[label].append(time.perf_counter() - t0)

        print()
        print(f"PostgreSQL, private database {name}; load average {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} cores (shared)")
        print(f"data: {written['tickets']:,} tickets, {written['messages']:,} messages, "
              f"{written['not_understood']:,} not understood; COPY {fill_s:.0f} s; {rebuild}")
        print()
        print(f"| {'report':<40} | {'runs':>4} | {'p50 ms':>8} | {'p95 ms':>8} | what it returned")
        print(f"|{'-' * 42}|{'-' * 6}|{'-' * 10}|{'-' * 10}|{'-' * 30}")
        for label, _, n in rows:
            values = timings[label]
            print(f"| {label:<40} | {n:>4} | {pct(values, 50) * 1000:>8.0f} | {pct(values, 95) * 1000:>8.0f} | "
                  f"{describe(results[label])}")
        for days, values in cluster_seconds.items():
            print(f"| {f'  of which clustering, {days} days':<40} | {len(values):>4} | "
                  f"{statistics.median(values) * 1000:>8.0f} | {pct(values, 95) * 1000:>8.0f} |")
    finally:
        await engine.dispose()
        if not args.keep:
            await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def describe(result: Any) -> str:
    if isinstance(result, list):
        return "raised " + (", ".join(result) or "nothing")
    if hasattr(result, "clusters"):
        top = result.clusters[0] if result.clusters else None
        return (f"{result.messages:,} messages, {result.analysed:,} analysed, {len(result.clusters)} clusters"
                + (f", biggest {top.size} ({', '.join(top.terms[:3])})" if top else ""))
    if hasattr(result, "items") and hasattr(result, "total"):
        first = result.items[0] if result.items else None
        return f"total {result.total:,}" + (f", #1 {first.key} {first.count:,} ({first.change_pct}%)" if first else "")
    if hasattr(result, "items"):
        return f"{len(result.items)} alerts"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_URL, help="a PostgreSQL URL with the right to create databases")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cluster-runs", type=int, default=5)
    parser.add_argument("--cluster-cap", type=int, default=ProblemsSettings().clusters_max_messages)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--kpi-rebuild", action="store_true",
                        help="build the KPI engine's aggregates with its own rebuild (slow at 1M tickets) instead of "
                             "writing its hourly volumes with the data")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
