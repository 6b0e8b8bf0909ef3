"""A busy year of a mid-size operator, written straight into a migrated database (reusable by any benchmark).

    from bench.yeardata import YearSpec, fill
    stats = await fill("postgresql+asyncpg://...", YearSpec(customers=200_000, tickets=1_000_000))

PostgreSQL: COPY (asyncpg's copy_records_to_table), in chunks; the search indexes of migration 0018 are dropped
before and built after (as a restore would), with a larger maintenance_work_mem. SQLite: executemany in one
transaction per chunk (the FTS5 triggers fill the search tables as they go). Then ANALYZE.

What it writes (deterministic for a seed): customers with RU/EN names, e-mails (client<N>@example.org), phones
(+7 9XX XXX-XX-XX), channel identities (email, telegram, webchat), orders (ORD-2026-<N>), tickets over the year
(about 2 % still active, the rest resolved or closed) with subjects, 3 messages per ticket on average (customer,
bot and agent texts in Russian or English built from a telecom vocabulary with word forms: роутер, роутера,
роутером...), internal notes on about one ticket in five, agents in the five default queues. Each ticket's first
message carries the bot's decision (action and reason, in its `extra`, as ingest records it); the ~9 % the bot did
not understand have no intent and a problem text (typical-problem clusters). Optional: a spike of one intent in the
last two hours (rising problems) and the KPI engine's hourly volumes written with the data (kpi_hourly).
bench/scale.py, bench/problems.py and bench/reports.py build their years with it.
Progress lines go to stderr; the function returns the row counts and seconds per table.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

CHUNK = 20_000
YEAR = timedelta(days=365)
ACTIVE_SHARE = 0.02
TEAMS = (1, 2, 3, 4, 5)  # the default queues of migration 0001: general, billing, technical, sales, retention
CHANNELS = ("email", "telegram", "webchat", "rest")

FIRST_RU = ("Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей", "Наталья", "Павел",
            "Татьяна", "Николай", "Ирина", "Михаил", "Светлана", "Андрей")
LAST_RU = ("Котов", "Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов", "Новиков", "Морозов",
           "Петров", "Волков", "Соловьёв", "Васильев", "Зайцев", "Павлов")
FIRST_EN = ("John", "Mary", "James", "Linda", "Robert", "Susan", "Michael", "Karen", "David", "Emma")
LAST_EN = ("Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Walker", "Young")

# Telecom phrases with the word forms people write; {order} and {amount} are filled in.
RU_CUSTOMER = (
    "Здравствуйте, у меня не работает интернет с утра, роутер мигает красным",
    "Проблема с роутером: после перезагрузки нет Wi-Fi",
    "Настройте, пожалуйста, роутер, не могу подключить телевизор",
    "Где мой заказ {order}? Обещали доставить вчера",
    "Почему списали {amount} рублей? Я не подключал платные услуги",
    "Хочу сменить тариф на более дешёвый",
    "Хочу расторгнуть договор, переезжаю в другой город",
    "Не приходит счёт за прошлый месяц",
    "Очень медленный интернет по вечерам, скорость ниже заявленной",
    "Сим-карта не регистрируется в сети после замены телефона",
    "Нет сигнала на приставке, телевидение не показывает",
    "Купил новый модем, как его активировать?",
    "Спасибо, всё заработало",
    "Подскажите баланс лицевого счёта",
    "Когда придёт мастер? Заявка {order}",
)
EN_CUSTOMER = (
    "Hi, my internet has been down since the morning and the router keeps blinking",
    "The routers you sent do not support 5 GHz, please replace",
    "Where is my order {order}? It was due yesterday",
    "Why was I charged {amount} for roaming? I was at home",
    "I want to change my tariff to a cheaper plan",
    "Please cancel my contract, I am moving abroad",
    "My TV box shows no signal after the update",
    "The connection is very slow in the evenings",
    "How do I activate the new modem?",
    "Thanks, everything works now",
    "Billing question: the invoice for last month is missing",
)
RU_AGENT = (
    "Проверили линию, перезагрузите, пожалуйста, роутер и напишите, помогло ли",
    "Заказ {order} передан в доставку, курьер позвонит заранее",
    "Списание {amount} рублей — абонентская плата по тарифу, детализацию отправили на почту",
    "Тариф изменён, новые условия действуют с первого числа",
    "Создали заявку на выезд мастера, он свяжется с вами",
    "Скорость восстановлена, на линии были работы",
)
EN_AGENT = (
    "We checked the line; please restart the router and let us know if it helped",
    "Order {order} is out for delivery, the courier will call ahead",
    "The charge of {amount} is the monthly fee; we emailed the details",
    "Your tariff has been changed from the first of next month",
    "A technician visit is booked, they will contact you",
)
BOT_RU = ("Спасибо за обращение! Передаю оператору.", "Проверьте, пожалуйста, что роутер включён в сеть.")
BOT_EN = ("Thanks for reaching out! Passing you to an agent.", "Please check that the router is plugged in.")
NOTES = ("Клиент звонил повторно, просит перезвонить", "Escalated to the network team, ticket NET-{n}",
         "Проверить оплату по заказу {order}", "Customer is angry, offer a discount", "Роутер заменён по гарантии")
SUBJECTS_RU = ("Не работает интернет", "Вопрос по счёту", "Заказ {order}", "Смена тарифа", "Роутер", "Расторжение",
               "Нет сигнала ТВ", "Медленный интернет")
SUBJECTS_EN = ("Internet down", "Billing question", "Order {order}", "Tariff change", "Router issue",
               "Cancellation", "No TV signal")
INTENTS = ("internet_down", "billing_question", "order_status", "tariff_change", "termination", "tv_no_signal", None)
SPIKE_INTENT = "internet_down"
# The bot's decision on a ticket's first message, as ingest records it in the message's `extra`: (action, reason,
# share). Tickets the bot did not understand have no intent and a text from PROBLEM_TEMPLATES (what the typical-
# problem clusters group).
DECISIONS = (("answer", "faq", 0.45), ("answer", "order_found", 0.08), ("answer", "order_number_missing", 0.04),
             ("escalate", "low_confidence", 0.07), ("escalate", "nlu_unavailable", 0.02),
             ("escalate", "needs_human", 0.12), ("escalate", "handoff", 0.09),
             ("escalate", "declared_escalate", 0.06), ("escalate", "repeated_question", 0.04),
             ("escalate", "declared_answer_and_escalate", 0.02), ("escalate", "no_self_service", 0.01))
NOT_UNDERSTOOD = frozenset({"low_confidence", "nlu_unavailable"})
SCORES = ((1, 0.08), (2, 0.07), (3, 0.15), (4, 0.3), (5, 0.4))
PROBLEM_TEMPLATES = (
    "роутер мигает {red} что делать", "у меня {red} горит лампочка на роутере", "my router light is {red_en}",
    "не работает приставка {tv}", "приставка пишет нет сигнала {tv}", "tv box says no signal {tv_en}",
    "списали деньги {twice} за {month}", "почему списали {twice} абонплату", "you charged me {twice_en} this month",
    "как перенести номер к вам {from_op}", "хочу перейти со своим номером {from_op}", "port my number from {from_op}",
    "не приходят смс {code}", "не приходит код подтверждения {code}", "i do not get the sms code {code}",
    "домофон не работает {home}", "сломался домофон в подъезде {home}", "the intercom is broken {home}",
    "камера видеонаблюдения не показывает {home}", "нет изображения с камеры {home}",
    "где забрать посылку с роутером {city}", "курьер не привёз оборудование {city}",
    "сколько стоит перенос точки подключения {city}", "how much is moving my connection {city}")
PROBLEM_FILLERS = {
    "red": ("красным", "красный", "оранжевым"), "red_en": ("red", "blinking red", "orange"),
    "tv": ("", "второй день", "с утра"), "tv_en": ("", "since morning", "again"),
    "twice": ("дважды", "два раза", "повторно"), "twice_en": ("twice", "two times"),
    "month": ("ноябрь", "октябрь", "прошлый месяц"), "from_op": ("", "от другого оператора", "mts", "beeline"),
    "code": ("", "в банк", "с сайта"), "home": ("", "уже неделю", "в доме 5"),
    "city": ("", "в москве", "в казани", "moscow")}
PROBLEM_NOISE = ("ок", "???", "спасибо", "а", "test", "алло", "you there?", "эээ", "1", ".")


def pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    """One value of (value, weight) pairs."""
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def problem_text(rng: random.Random) -> str:
    """What a customer the bot did not understand wrote: a problem template with its fillers, or noise."""
    if rng.random() < 0.15:
        return rng.choice(PROBLEM_NOISE)
    values = {k: rng.choice(v) for k, v in PROBLEM_FILLERS.items()}
    return " ".join(rng.choice(PROBLEM_TEMPLATES).format(**values).split())


@dataclass(frozen=True)
class YearSpec:
    customers: int = 200_000
    tickets: int = 1_000_000
    messages_per_ticket: float = 3.0
    note_share: float = 0.2
    orders: int = 100_000
    agents: int = 50
    seed: int = 13
    end: datetime = datetime(2026, 12, 1, tzinfo=UTC)  # the year is the 365 days before this
    spike: int = 0  # the last this many tickets: one intent (SPIKE_INTENT) in the last two hours (rising problems)
    hourly_volumes: bool = False  # write the KPI engine's hourly volumes (kpi_hourly) as its fold would count them
    # (policy id, first-response minutes) of existing SLA policies: half the escalated tickets get a clock of one
    sla_policies: tuple[tuple[int, int], ...] = ()
    surveys: bool = False  # CSAT surveys on half the tickets people resolved, 55 % of them answered

    @property
    def start(self) -> datetime:
        return self.end - YEAR


@dataclass
class FillStats:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    not_understood: int = 0  # first messages the bot did not understand (low_confidence, nlu_unavailable)


def _say(text: str) -> None:
    print(f"[yeardata {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def order_number(n: int) -> str:
    return f"ORD-2026-{n:06d}"


def customer_email(n: int) -> str:
    return f"client{n}@example.org"


def customer_phone(n: int) -> str:
    digits = f"{9000000000 + n * 7919 % 999999999:010d}"
    return f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"


class _Year:
    """Row generators; every value derives from the seed, so a run can be reproduced."""

    def __init__(self, spec: YearSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.customer_lang = [""] * (spec.customers + 1)
        self.agent_ids: list[int] = []
        self.not_understood = 0
        # (dimension, UTC hour, key) -> [tickets, escalations]: the KPI engine's hourly volumes of what was written
        self.hourly: dict[tuple[str, datetime, str], list[int]] = {}

    def volume(self, created: datetime, channel: str, intent: str | None, escalation_reason: str | None) -> None:
        """Count a ticket into the hourly volumes as the KPI fold would (docs of core.kpis.service.counts)."""
        if not self.spec.hourly_volumes:
            return
        hour = created.replace(minute=0, second=0, microsecond=0)
        escalated = int(escalation_reason is not None)
        for dimension, key in (("intent", intent), ("channel", channel), ("escalation_reason", escalation_reason)):
            if dimension == "escalation_reason" and not escalated:
                continue
            cell = self.hourly.setdefault((dimension, hour, key or ""), [0, 0])
            cell[0] += 1
            cell[1] += escalated

    def customers(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for n in range(1, self.spec.customers + 1):
            ru = rng.random() < 0.75
            self.customer_lang[n] = "ru" if ru else "en"
            name = f"{rng.choice(FIRST_RU)} {rng.choice(LAST_RU)}" if ru else f"{rng.choice(FIRST_EN)} " \
                f"{rng.choice(LAST_EN)}"
            created = self.spec.start + timedelta(seconds=rng.random() * YEAR.total_seconds())
            yield (n, name, customer_email(n), customer_phone(n), "ru" if ru else "en", None, None, created, created)

    def identities(self) -> Iterator[tuple[Any, ...]]:
        ident = 0
        for n in range(1, self.spec.customers + 1):
            ident += 1
            yield (ident, n, "email", customer_email(n), None, True, self.spec.start)
            if n % 2 == 0:
                ident += 1
                yield (ident, n, "telegram", str(100_000_000 + n), None, False, self.spec.start)
            if n % 5 == 0:
                ident += 1
                yield (ident, n, "webchat", f"wc-{n:08x}", None, False, self.spec.start)

    def orders(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for n in range(1, self.spec.orders + 1):
            created = self.spec.start + timedelta(seconds=rng.random() * YEAR.total_seconds())
            yield (n, order_number(n), rng.randint(1, self.spec.customers), rng.choice(("new", "shipped", "done")),
                   "Router + installation", created, created)

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(order=order_number(rng.randint(1, self.spec.orders)),
                               amount=rng.choice((299, 450, 990, 1500)), n=rng.randint(1000, 9999))

    def tickets_and_conversation(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(table, row) of CONVERSATION's tables, tickets in creation order."""
        rng, spec = self.rng, self.spec
        message_id = note_id = 0
        step = YEAR.total_seconds() / spec.tickets
        active_from = int(spec.tickets * (1 - ACTIVE_SHARE * 2))
        spike_from = spec.tickets - spec.spike
        for tid in range(1, spec.tickets + 1):
            customer = rng.randint(1, spec.customers)
            ru = self.customer_lang[customer] == "ru"
            spike = tid > spike_from
            if spike:  # the spike's tickets: the last two hours, in creation order
                created = spec.end - timedelta(seconds=7200 * (1 - (tid - spike_from) / (spec.spike + 1)))
            else:
                created = spec.start + timedelta(seconds=tid * step + rng.random() * step)
            active = tid > active_from and rng.random() < 0.5
            status = rng.choice(("new", "open", "open", "open", "pending")) if active else rng.choice(
                ("resolved", "closed", "closed"))
            team = rng.choice(TEAMS)
            assignee = rng.choice(self.agent_ids) if (not active or rng.random() < 0.6) and self.agent_ids else None
            channel = rng.choice(CHANNELS)
            action, reason = pick(rng, [((a, r), w) for a, r, w in DECISIONS])
            understood = reason not in NOT_UNDERSTOOD
            intent = SPIKE_INTENT if spike else (rng.choice(INTENTS) if understood else None)
            self.not_understood += not understood
            self.volume(created, channel, intent, reason if action == "escalate" else None)
            subject = self._fill(rng.choice(SUBJECTS_RU if ru else SUBJECTS_EN))
            n_messages = max(1, int(rng.expovariate(1 / spec.messages_per_ticket) + 0.5))
            at = created
            last_customer = created
            first_response: datetime | None = None
            agent_wrote = False
            for i in range(n_messages):
                message_id += 1
                extra = "{}"
                if i == 0 and not understood:
                    kind, direction, text = "customer", "inbound", problem_text(rng)
                elif i == 0 or rng.random() < 0.45:
                    kind, direction = "customer", "inbound"
                    text = self._fill(rng.choice(RU_CUSTOMER if ru else EN_CUSTOMER))
                elif rng.random() < 0.3:
                    kind, direction, text = "bot", "outbound", rng.choice(BOT_RU if ru else BOT_EN)
                else:
                    kind, direction = "agent", "outbound"
                    text = self._fill(rng.choice(RU_AGENT if ru else EN_AGENT))
                if kind != "customer" and first_response is None:
                    first_response = at
                agent_wrote = agent_wrote or kind == "agent"
                if kind == "customer":
                    last_customer = at
                    # The bot's decision on the first message (ingest's record); later ones go to the people.
                    extra = json.dumps({"action": action, "reason": reason} if i == 0 else
                                       {"action": "agent", "reason": "with_humans"})
                yield "messages", (message_id, tid, direction, kind, assignee if kind == "agent" else None, channel,
                                   f"y-{message_id}" if direction == "inbound" else None, text, None, "[]",
                                   intent if kind == "customer" else None, None, "ru" if ru else "en", "[]", extra,
                                   None, at)
                at += timedelta(minutes=rng.randint(1, 240))
            if rng.random() < spec.note_share:
                note_id += 1
                yield "notes", (note_id, tid, assignee, self._fill(rng.choice(NOTES)), at)
            done_at = at if not active else None
            by_bot = done_at is not None and action == "answer" and not agent_wrote
            reopened = int(done_at is not None and not by_bot and rng.random() < 0.05)
            if spec.sla_policies and action == "escalate" and rng.random() < 0.5:
                # An SLA clock on half the escalated tickets, met or breached by the first answer's time.
                policy, minutes = rng.choice(spec.sla_policies)
                due = created + timedelta(minutes=minutes)
                breached = first_response is None or first_response > due
                yield "ticket_slas", (tid, policy, created, due, first_response, created, created + timedelta(hours=8),
                                      done_at, 0.0, 0.0, 0.0, '["first_response:breach"]' if breached else "[]",
                                      False, None, created)
            if spec.surveys and done_at is not None and not by_bot and rng.random() < 0.5:
                answered = rng.random() < 0.55
                sent = done_at + timedelta(hours=1)
                yield "csat_surveys", (tid, channel, "ru" if ru else "en", sent,
                                       pick(rng, SCORES) if answered else None,
                                       sent + timedelta(minutes=20) if answered else None,
                                       channel if answered else None, False)
            yield "tickets", (
                tid, customer, subject, status, rng.choice(("low", "normal", "normal", "high", "urgent")), intent,
                0.9 if intent else None, team, assignee, channel, f"y-thread-{tid}", None, "ru" if ru else "en", 0,
                None, created, at, last_customer, first_response, done_at,
                done_at if status == "closed" else None, by_bot, None,
                (at + timedelta(hours=rng.randint(1, 48))) if active else None,
                created if assignee else None, reopened)

COLUMNS = {
    "customers": ("id", "name", "email", "phone", "language", "merged_into_id", "erased_at", "created_at",
                  "updated_at"),
    "channel_identities": ("id", "customer_id", "channel", "external_id", "display_name", "verified", "created_at"),
    "orders": ("id", "number", "customer_id", "status", "description", "created_at", "updated_at"),
    "tickets": ("id", "customer_id", "subject", "status", "priority", "intent", "intent_confidence", "team_id",
                "assignee_id", "channel", "thread_key", "identity_id", "language", "failed_bot_answers",
                "merged_into_id", "created_at", "updated_at", "last_customer_message_at", "first_response_at",
                "resolved_at", "closed_at", "resolved_by_bot", "waiting_notice_at", "sla_due_at", "assigned_at",
                "reopen_count"),
    "messages": ("id", "ticket_id", "direction", "author_kind", "author_user_id", "channel", "external_message_id",
                 "text", "html", "attachments", "intent", "confidence", "language", "entities", "extra",
                 "in_reply_to_id", "created_at"),
    "notes": ("id", "ticket_id", "author_user_id", "text", "created_at"),
    "kpi_hourly": ("dimension", "hour", "key", "tickets", "escalations"),
    "ticket_slas": ("ticket_id", "policy_id", "started_at", "first_response_due_at", "first_response_met_at",
                    "resolution_started_at", "resolution_due_at", "resolution_met_at", "paused_seconds",
                    "next_response_paused_seconds", "resolution_paused_seconds", "notified", "reminded", "armed_at",
                    "updated_at"),
    "csat_surveys": ("ticket_id", "channel", "language", "sent_at", "score", "answered_at", "answer_channel",
                     "flagged"),
}


def _chunks(rows: Iterator[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# What the ticket generator yields, in the order a chunk is written (tickets first: the rest refer to them).
CONVERSATION = ("tickets", "messages", "notes", "ticket_slas", "csat_surveys")
Writer = Callable[[str, Sequence[tuple[Any, ...]]], Any]


async def _write_all(year: _Year, write: Writer, stats: FillStats) -> None:
    for table, rows in (("customers", year.customers()), ("channel_identities", year.identities()),
                        ("orders", year.orders())):
        started, count = time.perf_counter(), 0
        for chunk in _chunks(rows):
            await write(table, chunk)
            count += len(chunk)
        stats.rows[table], stats.seconds[table] = count, time.perf_counter() - started
        _say(f"{table}: {count:,} rows in {stats.seconds[table]:.0f} s")
    started = time.perf_counter()
    buffers: dict[str, list[tuple[Any, ...]]] = {t: [] for t in CONVERSATION}
    counts = dict.fromkeys(buffers, 0)
    next_report = 100_000

    async def flush(table: str) -> None:
        if buffers[table]:
            await write(table, buffers[table])
            counts[table] += len(buffers[table])
            buffers[table] = []

    for table, row in year.tickets_and_conversation():
        buffers[table].append(row)
        if table == "tickets" and len(buffers["tickets"]) >= CHUNK:
            # Tickets first: messages and notes refer to them.
            for name in CONVERSATION:
                await flush(name)
            if counts["tickets"] >= next_report:
                rate = counts["tickets"] / (time.perf_counter() - started)
                _say(f"tickets: {counts['tickets']:,} / {year.spec.tickets:,} ({rate:,.0f}/s), "
                     f"messages {counts['messages']:,}, notes {counts['notes']:,}")
                next_report += 100_000
    for name in CONVERSATION:
        await flush(name)
    for name, n in counts.items():
        stats.rows[name] = n
    stats.not_understood = year.not_understood
    if year.spec.hourly_volumes:
        rows = [(*key, tickets, escalations) for key, (tickets, escalations) in year.hourly.items()]
        for chunk in _chunks(iter(rows)):
            await write("kpi_hourly", chunk)
        stats.rows["kpi_hourly"] = len(rows)
    stats.seconds["tickets+messages+notes"] = time.perf_counter() - started


async def _agents_pg(conn: Any, year: _Year) -> None:
    """Agents in the default queues (password hashes are not valid: nobody signs in as them)."""
    first = await conn.fetchval("SELECT coalesce(max(id), 0) FROM users")
    rows = [(first + i + 1, f"agent{i}@bench.example", f"Agent {i}", "x", "agent", "ru", TEAMS[i % len(TEAMS)], 10,
             True, year.spec.start, "[]", False) for i in range(year.spec.agents)]
    await conn.copy_records_to_table("users", records=rows, columns=(
        "id", "email", "name", "password_hash", "role", "language", "team_id", "capacity", "is_active", "created_at",
        "languages", "away"))
    year.agent_ids = [r[0] for r in rows]


async def fill_postgres(url: str, spec: YearSpec) -> FillStats:
    import asyncpg

    from core.search.indexes import PG_INDEXES

    sa_url = make_url(url)
    conn = await asyncpg.connect(user=sa_url.username, password=sa_url.password, host=sa_url.host,
                                 port=sa_url.port or 5432, database=sa_url.database)
    stats = FillStats()
    year = _Year(spec)
    try:
        await _agents_pg(conn, year)
        for name in PG_INDEXES:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")

        async def write(table: str, rows: Sequence[tuple[Any, ...]]) -> None:
            # JSON columns are given as JSON text, which asyncpg's jsonb codec takes as it is.
            await conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])

        await _write_all(year, write, stats)
        for table in (t for t, columns in COLUMNS.items() if columns[0] == "id"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                               f"(SELECT coalesce(max(id), 1) FROM {table}))")
        await conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))")
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for name, (table, expression, method) in PG_INDEXES.items():
            t0 = time.perf_counter()
            await conn.execute(f"CREATE INDEX {name} ON {table} USING {method} ({expression})")
            _say(f"index {name}: {time.perf_counter() - t0:.0f} s")
        stats.seconds["search indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        stats.seconds["vacuum analyze"] = time.perf_counter() - started
    finally:
        await conn.close()
    return stats


def _fill_sqlite_sync(path: str, spec: YearSpec) -> FillStats:
    stats = FillStats()
    year = _Year(spec)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        first = db.execute("SELECT coalesce(max(id), 0) FROM users").fetchone()[0]
        agents = [(first + i + 1, f"agent{i}@bench.example", f"Agent {i}", "x", "agent", "ru", TEAMS[i % 5], 10, 1,
                   spec.start.strftime("%Y-%m-%d %H:%M:%S.%f"), "[]", 0) for i in range(spec.agents)]
        db.executemany("INSERT INTO users (id, email, name, password_hash, role, language, team_id, capacity, "
                       "is_active, created_at, languages, away) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", agents)
        year.agent_ids = [a[0] for a in agents]

        def convert(value: Any) -> Any:
            # What the app's column types store on SQLite: naive UTC datetimes as text.
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) \
                else value

        async def write(table: str, rows: Sequence[tuple[Any, ...]]) -> None:
            cols = COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608
            db.executemany(sql, [tuple(convert(v) for v in r) for r in rows])
            db.commit()

        asyncio.run(_write_all(year, write, stats))
        started = time.perf_counter()
        db.execute("ANALYZE")
        db.commit()
        stats.seconds["analyze"] = time.perf_counter() - started
    finally:
        db.close()
    return stats


async def fill(url: str, spec: YearSpec) -> FillStats:
    """Fill the migrated database at `url` (SQLAlchemy URL) with a year of `spec`; returns rows and seconds."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        assert path
        return await asyncio.to_thread(_fill_sqlite_sync, path, spec)
    return await fill_postgres(url, spec)
