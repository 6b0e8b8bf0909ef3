"""The ingest pipeline: inbound messages become committed ticket state and queued answers.

idempotency -> identity -> thread -> persist -> decision (with the NLU parse) -> outbox, committed together.
The NLU parse runs before the transaction so a slow engine never holds a database connection.

Group commit: the messages of concurrent callers are gathered into batches (what arrived while the previous
batch was being written, up to `ingest_batch_size`). A batch is one transaction: each lookup is one query for
the whole batch (known messages, identities, customer locks, thread tickets, last bot answers, orders) and the
rows go in a table at a time, so the per-message cost is a few rows instead of a dozen round trips. The result
for each message is the one it would get if the messages were ingested one by one in arrival order: the batch
keeps what it looked up current as it applies its messages in order. When a batch fails (a concurrent duplicate
on the unique (channel, external id) key, a deadlock, a message that trips a bug) it is rolled back and its
messages are ingested one by one, each in its own transaction, so one bad message never fails the others.
A concurrent duplicate loses the race on the unique key and returns the winner's result.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.customers import repository as customer_repo
from core.customers import service as customer_service
from core.customers.models import ChannelIdentity, Customer
from core.db.base import utcnow
from core.decision import texts
from core.decision.policy import Action, Decision, DecisionContext, OrderInfo, decide
from core.events import Event, EventBus, emit, take_pending
from core.ingest.schemas import InboundMessage, IngestResult
from core.orders.models import Order
from core.quarantine.models import QuarantinedPayload
from core.routing import service as routing
from core.tickets import repository as ticket_repo
from core.tickets import service as ticket_service
from core.tickets.models import (
    AuthorKind,
    Direction,
    Message,
    Priority,
    Ticket,
    TicketStatus,
    parse_ticket_number,
)
from core.tickets.repository import OPEN_STATUSES
from nlu.protocol import IntentEngine, Parse
from nlu.text import detect_language

log = logging.getLogger(__name__)

ResponseLookup = Callable[[str, str], str | None]
"""(intent, language) -> the FAQ answer for that intent in that language, if there is one."""

MAX_ATTEMPTS = 5
MAX_PARSE_CHARS = 5000
HANDOFF_PAYLOAD = "/human_handoff"


@dataclass(eq=False)
class _Item:
    """A message waiting for its batch, and the caller waiting for its result."""

    inbound: InboundMessage
    parse: Parse | None
    future: asyncio.Future[IngestResult]

    @property
    def key(self) -> tuple[str, str]:
        return self.inbound.channel, self.inbound.external_message_id


@dataclass(eq=False)
class _Reply:
    """The bot's answer to send; its text is written once the ticket has its number."""

    decision: Decision
    ctx: DecisionContext
    language: str
    intent: str | None
    quick_replies: list[dict[str, str]]


@dataclass(eq=False)
class _Work:
    """One message's state between the phases of its batch."""

    inbound: InboundMessage
    parse: Parse | None
    identity: ChannelIdentity
    customer: Customer
    ticket: Ticket
    threading: str
    language: str | None
    message_id: int | None = None
    action: Action | None = None
    reason: str = ""
    reply: _Reply | None = None
    replies: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Lookups:
    """What a batch looked up (one query per kind), kept current as its messages are applied in order."""

    identities: dict[tuple[str, str], ChannelIdentity] = field(default_factory=dict)
    locked: set[int] = field(default_factory=set)
    # (customer id, or the new Customer itself before it has one; channel; thread key) -> latest ticket or None
    threads: dict[tuple[object, str, str], Ticket | None] = field(default_factory=dict)
    # (channel, external message id) of this batch's messages -> their ticket, for references inside the batch
    placed: dict[tuple[str, str], Ticket] = field(default_factory=dict)
    last_bot_intent: dict[int, str | None] = field(default_factory=dict)  # id(ticket) -> intent
    orders: dict[str, Order] = field(default_factory=dict)
    routing: routing.RoutingTable | None = None


@dataclass
class IngestStats:
    """What this service did since it started (the API serves these at /metrics)."""

    batches: int = 0
    messages: int = 0
    largest_batch: int = 0
    split_batches: int = 0  # batches that failed and were ingested one by one
    ingested: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, action or "duplicate")
    quarantined: Counter[str] = field(default_factory=Counter)  # by channel

    def record(self, channel: str, result: IngestResult) -> None:
        self.ingested[(channel, result.action if result.created else "duplicate")] += 1


def storable_text(value: bytes | str) -> str:
    """Any payload as text every backend stores: bytes that are not UTF-8, lone surrogates and NUL characters are
    written as backslash escapes (a quarantined payload is often quarantined for carrying exactly those)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    elif not value.isascii():
        value = value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


def _customer_key(customer: Customer) -> object:
    return customer.id if customer.id is not None else customer


def _settle(future: asyncio.Future[IngestResult], result: IngestResult | BaseException) -> None:
    if future.done():  # the caller went away (cancelled); the message is committed all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class IngestService:
    """Turns InboundMessages into committed ticket state and queued answers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: Callable[[], IntentEngine],
        bus: EventBus,
        settings: CoreSettings,
        responses: ResponseLookup | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.bus = bus
        self.settings = settings
        self.responses = responses or (lambda _intent, _lang: None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Item] = deque()
        self._drainer: asyncio.Task[None] | None = None  # writes the batches; ends when nothing is waiting
        self.stats = IngestStats()

    async def ingest(self, inbound: InboundMessage) -> IngestResult:
        """Ingest one message; a redelivery returns the original result and writes nothing.

        The message joins the next batch; the call returns once that batch has committed.
        """
        parse = await self._parse(inbound)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests): nothing carries over
            self._loop, self._pending, self._drainer = loop, deque(), None
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._pending.append(_Item(inbound, parse, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Write batches until nothing is waiting (one batch at a time: the next one gathers meanwhile)."""
        while self._pending:
            batch = self._take_batch()
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:  # shutdown: the callers must not wait forever
                for item in batch:
                    item.future.cancel()
                raise

    def _take_batch(self) -> list[_Item]:
        """The oldest waiting messages, at most one per (channel, external id): a duplicate waits for the next
        batch and then finds the first one committed."""
        batch: list[_Item] = []
        keys: set[tuple[str, str]] = set()
        later: list[_Item] = []
        while self._pending and len(batch) < self.settings.ingest_batch_size:
            item = self._pending.popleft()
            if item.key in keys:
                later.append(item)
            else:
                keys.add(item.key)
                batch.append(item)
        self._pending.extendleft(reversed(later))
        return batch

    async def _run_batch(self, items: list[_Item]) -> None:
        self.stats.batches += 1
        self.stats.messages += len(items)
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        if len(items) > 1:
            try:
                results, events = await self._transaction(items)
            except Exception as exc:
                self.stats.split_batches += 1
                log.warning("ingest batch failed; ingesting its messages one by one",
                            extra={"size": len(items), "error": f"{type(exc).__name__}: {exc}"[:300]})
            else:
                # Callers first: a channel acknowledges the customer's message before the live events (the bot's
                # answer among them) reach the customer's screen.
                for item, result in zip(items, results, strict=True):
                    self.stats.record(item.inbound.channel, result)
                    _settle(item.future, result)
                self.bus.publish_all(events)
                return
        for item in items:
            try:
                result, events = await self._ingest_one(item)
            except Exception as exc:
                _settle(item.future, exc)
            else:
                self.stats.record(item.inbound.channel, result)
                _settle(item.future, result)
                self.bus.publish_all(events)

    async def _ingest_one(self, item: _Item) -> tuple[IngestResult, list[Event]]:
        """One message in its own transaction, retried when a concurrent writer got in the way."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                results, events = await self._transaction([item])
                return results[0], events
            except (IntegrityError, OperationalError) as exc:
                # A concurrent transaction inserted the same message or the same new identity first (or,
                # on SQLite, held the write lock too long): its result is now visible, or a retry succeeds.
                existing = await self.find_existing(*item.key)
                if existing is not None:
                    return existing, []
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                log.info("ingest retry", extra={"attempt": attempt + 1, "error": type(exc).__name__})
        raise AssertionError("unreachable")

    async def _transaction(self, items: list[_Item]) -> tuple[list[IngestResult], list[Event]]:
        async with self.sessionmaker() as session:
            async with session.begin():
                results = await self._ingest_in_transaction(session, items)
            return results, take_pending(session)

    async def find_existing(self, channel: str, external_message_id: str) -> IngestResult | None:
        async with self.sessionmaker() as session:
            return await self._existing(session, channel, external_message_id)

    @staticmethod
    async def _existing(session: AsyncSession, channel: str, external_message_id: str) -> IngestResult | None:
        message = await ticket_repo.get_message_by_external_id(session, channel, external_message_id)
        if message is None:
            return None
        ticket = await ticket_service.get(session, message.ticket_id)
        replies = (await session.scalars(
            select(Message.id).where(Message.in_reply_to_id == message.id).order_by(Message.id)
        )).all()
        return IngestResult(
            ticket_id=ticket.id, ticket_number=ticket.number, message_id=message.id,
            customer_id=ticket.customer_id, created=False, action=str(message.extra.get("action", "")),
            reply_message_ids=list(replies),
        )

    async def quarantine(self, channel: str, reason: str, payload: bytes | str,
                         content_type: str = "application/octet-stream") -> int:
        """Keep a payload that could not be parsed, with the reason; never drop it."""
        text = storable_text(payload)
        reason = storable_text(reason)
        async with self.sessionmaker() as session:
            async with session.begin():
                row = QuarantinedPayload(channel=channel, reason=reason[:4000], payload=text,
                                         content_type=storable_text(content_type)[:100])
                session.add(row)
                await session.flush()
                emit(session, "quarantine", {"id": row.id, "channel": channel, "reason": row.reason})
            self.bus.publish_all(take_pending(session))
        self.stats.quarantined[channel] += 1
        log.warning("payload quarantined", extra={"channel": channel, "reason": reason, "id": row.id})
        return row.id

    async def _parse(self, inbound: InboundMessage) -> Parse | None:
        """The NLU's reading, or None when the engine failed (the policy then escalates)."""
        if inbound.auto_reply:
            return None
        if inbound.extra.get("quick_reply") == HANDOFF_PAYLOAD:
            # The customer pressed "talk to an operator": no guessing needed.
            language = inbound.language_hint or detect_language(inbound.text, default="en")
            return Parse(text=inbound.text, intent="human_handoff", confidence=1.0, confident=True, language=language)
        try:
            return await self.engine().parse(inbound.text[:MAX_PARSE_CHARS])
        except Exception:
            log.exception("NLU engine failed; escalating to humans")
            return None

    # --- one batch, one transaction -------------------------------------------------------------------------

    async def _ingest_in_transaction(self, session: AsyncSession, items: Sequence[_Item]) -> list[IngestResult]:
        """Phases: look up -> place each message (identity, thread) and decide it -> flush (new customers,
        identities and tickets with their final state, changes to known ones) -> insert the inbound rows ->
        write the answers (they quote the new tickets' numbers) and their outbox rows."""
        known = {(channel, external_id) for channel, external_id in (await session.execute(
            select(Message.channel, Message.external_message_id)
            .where(tuple_(Message.channel, Message.external_message_id).in_([i.key for i in items]))
        )).all()}
        results: list[IngestResult | None] = [None] * len(items)
        for index, item in enumerate(items):
            if item.key in known:
                results[index] = await self._existing(session, *item.key)
        fresh = [(index, item) for index, item in enumerate(items) if results[index] is None]
        if fresh:
            look = _Lookups()
            await self._prefetch_identities(session, look, [item.inbound for _, item in fresh])
            await self._lock_customers(session, look, [i.customer_id for i in look.identities.values()])
            await self._prefetch_threads(session, look, [item.inbound for _, item in fresh])
            # Autoflush stays on while placing: a lookup there (a verified contact, references) must see the
            # batch's earlier new rows. The usual message makes no lookup, so nothing is flushed half-decided.
            works = [await self._place(session, look, item.inbound, item.parse) for _, item in fresh]
            with session.no_autoflush:
                await self._prefetch_context(session, look, works)
                for work in works:
                    await self._decide(session, look, work)
            # New customers, identities and tickets go in with their final state; the changed ones are updated.
            await session.flush()
            rows = [self._inbound_row(work) for work in works]
            # The rows themselves go in without a unit-of-work object each: one INSERT per table for the batch.
            ids = await session.scalars(insert(Message).returning(Message.id, sort_by_parameter_order=True), rows)
            for work, message_id in zip(works, ids, strict=True):
                work.message_id = message_id
                ticket = work.ticket
                emit(session, "messages", {"ticket_id": ticket.id, "message_id": message_id, "direction": "inbound",
                                           "author_kind": "customer", "customer_id": ticket.customer_id,
                                           "channel": ticket.channel, "thread_key": ticket.thread_key})
            answered = [w for w in works if w.reply is not None]
            reply_ids = await ticket_service.add_bot_replies(session, [self._bot_reply(w) for w in answered])
            for work, reply_id in zip(answered, reply_ids, strict=True):
                work.replies.append(reply_id)
            for (index, _), work in zip(fresh, works, strict=True):
                results[index] = self._finish(session, work)
        return [r for r in results if r is not None]

    async def _prefetch_identities(self, session: AsyncSession, look: _Lookups,
                                   inbounds: Sequence[InboundMessage]) -> None:
        keys = {(i.channel, i.sender.external_id) for i in inbounds}
        rows = await customer_repo.identities_by_keys(session, keys)
        look.identities.update({(r.channel, r.external_id): r for r in rows})

    async def _lock_customers(self, session: AsyncSession, look: _Lookups, ids: Iterable[int]) -> None:
        """Serialise concurrent work on the same customers (row locks on PostgreSQL, taken in id order so two
        batches never wait on each other in a circle; SQLite has a single writer anyway)."""
        wanted = sorted(set(ids) - look.locked)
        if wanted:
            await customer_repo.lock_customers(session, wanted)
            look.locked.update(wanted)

    async def _prefetch_threads(self, session: AsyncSession, look: _Lookups,
                                inbounds: Sequence[InboundMessage]) -> None:
        keys: set[tuple[int, str, str]] = set()
        for inbound in inbounds:
            identity = look.identities.get((inbound.channel, inbound.sender.external_id))
            if identity is not None and inbound.thread_key:
                keys.add((identity.customer_id, inbound.channel, inbound.thread_key))
        if not keys:
            return
        tickets = await ticket_repo.latest_by_threads(session, keys)
        found = {(t.customer_id, t.channel, t.thread_key): t for t in tickets}
        for key in keys:
            look.threads[key] = found.get(key)

    async def _place(self, session: AsyncSession, look: _Lookups, inbound: InboundMessage,
                     parse: Parse | None) -> _Work:
        """Identity and thread of one message, and the ticket's bookkeeping for a customer message."""
        key = (inbound.channel, inbound.sender.external_id)
        identity = await customer_service.resolve_identity(session, inbound.channel, inbound.sender,
                                                           prefetched=look.identities.get(key))
        look.identities[key] = identity
        customer = identity.customer
        if customer.id is not None:
            await self._lock_customers(session, look, [customer.id])
        ticket, threading = await self._thread(session, look, customer, identity, inbound)
        look.placed[(inbound.channel, inbound.external_message_id)] = ticket
        if threading == "created":
            look.last_bot_intent[id(ticket)] = None

        language = (parse.language if parse and parse.text.strip() else None) or inbound.language_hint \
            or ticket.language or customer.language
        now = utcnow()
        ticket.identity = identity
        ticket.last_customer_message_at = ticket.last_customer_message_at or now
        ticket.updated_at = now
        ticket.language = language or ticket.language
        if customer.language is None and language is not None:
            customer.language = language
        if ticket.status == TicketStatus.pending:
            ticket_service.transition(ticket, TicketStatus.open)
        return _Work(inbound=inbound, parse=parse, identity=identity, customer=customer, ticket=ticket,
                     threading=threading, language=language)

    async def _thread(
        self, session: AsyncSession, look: _Lookups, customer: Customer, identity: ChannelIdentity,
        inbound: InboundMessage,
    ) -> tuple[Ticket, str]:
        """Continue an open ticket, reopen a recently resolved one, or start a new one."""
        candidate = await self._find_thread(session, look, customer, inbound)
        if candidate is not None:
            if candidate.status in OPEN_STATUSES:
                return candidate, "continued"
            window = timedelta(hours=self.settings.reopen_window_hours)
            if (candidate.status == TicketStatus.resolved and candidate.resolved_at is not None
                    and candidate.resolved_at >= utcnow() - window):
                ticket_service.transition(candidate, TicketStatus.open)
                return candidate, "reopened"

        subject = (inbound.subject or inbound.text.strip().split("\n", 1)[0])[:120] or "(no subject)"
        ticket = Ticket(
            subject=subject, channel=inbound.channel, thread_key=inbound.thread_key, status=TicketStatus.new,
            priority=Priority.normal, failed_bot_answers=0, created_at=utcnow(), updated_at=utcnow(),
        )
        ticket.customer = customer
        ticket.identity = identity
        ticket.team = None
        ticket.assignee = None
        session.add(ticket)
        if inbound.thread_key:
            look.threads[(_customer_key(customer), inbound.channel, inbound.thread_key)] = ticket
        return ticket, "created"

    async def _find_thread(self, session: AsyncSession, look: _Lookups, customer: Customer,
                           inbound: InboundMessage) -> Ticket | None:
        """By references (this batch's messages first), then a quoted ticket number of the same customer,
        then the latest ticket of the thread key."""
        candidate: Ticket | None = None
        for ref in reversed(inbound.references):
            placed = look.placed.get((inbound.channel, ref))
            if placed is not None and placed.customer is customer:
                candidate = placed
                break
        if candidate is None and customer.id is not None:
            candidate = await ticket_repo.find_by_references(session, customer.id, inbound.channel,
                                                             inbound.references)
            if candidate is None and inbound.ticket_number_hint:
                number = parse_ticket_number(inbound.ticket_number_hint)
                if number is not None:
                    found = await ticket_repo.get(session, number)
                    # Scoped to the sender: quoting someone else's ticket number never joins their thread.
                    if found is not None and found.customer_id == customer.id:
                        candidate = found
        if candidate is None and inbound.thread_key:
            key = (_customer_key(customer), inbound.channel, inbound.thread_key)
            if key in look.threads:
                candidate = look.threads[key]
            elif customer.id is not None:
                candidate = await ticket_repo.find_latest_by_thread(session, customer.id, inbound.channel,
                                                                    inbound.thread_key)
        for _ in range(5):
            if candidate is None or candidate.merged_into_id is None:
                break
            candidate = await ticket_repo.get(session, candidate.merged_into_id)
        return candidate

    async def _prefetch_context(self, session: AsyncSession, look: _Lookups, works: Sequence[_Work]) -> None:
        """The last bot answer of every continued ticket and every order asked about, one query each."""
        tickets = {w.ticket.id: w.ticket for w in works if id(w.ticket) not in look.last_bot_intent}
        if tickets:
            intents = await ticket_repo.last_bot_intents(session, list(tickets))
            for ticket_id, ticket in tickets.items():
                look.last_bot_intent[id(ticket)] = intents.get(ticket_id)
        numbers = {n for w in works if (n := self._order_number(w.parse))}
        if numbers:
            orders = (await session.scalars(select(Order).where(Order.number.in_(numbers)))).all()
            look.orders.update({o.number: o for o in orders})

    @staticmethod
    def _order_number(parse: Parse | None) -> str | None:
        if parse is None or not parse.confident or parse.intent != "order_status":
            return None
        entity = parse.entity("order_number")
        return entity.value if entity else None

    async def _decide(self, session: AsyncSession, look: _Lookups, work: _Work) -> None:
        """The policy's decision for one message, applied to its ticket."""
        ctx = self._context(look, work)
        decision = decide(ctx)
        work.action, work.reason = decision.action, decision.reason
        work.reply = await self._apply(session, look, work.ticket, decision, ctx, work.language)
        if work.reply is not None:
            look.last_bot_intent[id(work.ticket)] = work.reply.intent

    @staticmethod
    def _inbound_row(work: _Work) -> dict[str, Any]:
        """The customer message's row (its ticket has an id by now)."""
        ticket, inbound, parse = work.ticket, work.inbound, work.parse
        if work.action is None:
            raise RuntimeError("a message was stored before it was decided")
        return {
            "ticket_id": ticket.id, "direction": Direction.inbound, "author_kind": AuthorKind.customer,
            "author_user_id": None, "channel": inbound.channel, "external_message_id": inbound.external_message_id,
            "text": inbound.text, "html": inbound.html,
            "attachments": [a.model_dump(exclude_none=True) for a in inbound.attachments],
            "intent": parse.intent if parse else None, "confidence": parse.confidence if parse else None,
            "language": work.language,
            "entities": [{"type": e.type, "value": e.value, "start": e.start, "end": e.end}
                         for e in (parse.entities if parse else ())],
            "extra": {**inbound.extra, "action": work.action.value, "reason": work.reason},
            "in_reply_to_id": None, "created_at": inbound.received_at,
        }

    def _context(self, look: _Lookups, work: _Work) -> DecisionContext:
        parse, ticket = work.parse, work.ticket
        intent = parse.intent if parse and parse.confident else None
        order_number = self._order_number(parse)
        order: OrderInfo | None = None
        row = look.orders.get(order_number) if order_number else None
        # Only the order's own customer (or an order not linked to anyone) gets its status.
        if row is not None and row.customer_id in (None, ticket.customer_id):
            order = OrderInfo(row.number, row.status, row.description)
        faq = self.responses(intent, work.language or "en") if intent else None
        return DecisionContext(
            parse=parse, ticket_status=ticket.status, assigned=ticket.assignee_id is not None,
            failed_bot_answers=ticket.failed_bot_answers, last_bot_intent=look.last_bot_intent.get(id(ticket)),
            auto_reply=work.inbound.auto_reply, faq_answer=faq, order_number=order_number, order=order,
        )

    async def _apply(self, session: AsyncSession, look: _Lookups, ticket: Ticket, decision: Decision,
                     ctx: DecisionContext, language: str | None) -> _Reply | None:
        """Apply the decision to the ticket; the bot's answer to send, if any."""
        parse = ctx.parse
        if parse is not None and parse.confident and decision.action in (Action.answer, Action.escalate):
            ticket.intent = parse.intent
            ticket.intent_confidence = parse.confidence
        if decision.priority is not None and decision.priority.rank > ticket.priority.rank:
            ticket.priority = decision.priority
        if decision.action in (Action.agent, Action.ignore):
            return None

        lang = language or "en"
        if decision.action == Action.answer:
            ticket_service.transition(ticket, TicketStatus.bot)
            ticket.failed_bot_answers = ticket.failed_bot_answers + 1 if decision.failed_answer else 0
            return _Reply(decision=decision, ctx=ctx, language=lang, intent=decision.route_intent,
                          quick_replies=[{"title": texts.text("talk_to_operator", lang), "payload": HANDOFF_PAYLOAD}])

        if look.routing is None:  # read once per batch, when its first message goes to humans
            look.routing = await routing.routing_table(session)
        team = look.routing.team_for(decision.route_intent)
        if team is not None:
            ticket.team_id = team.id
            ticket.team = team
        ticket.failed_bot_answers = 0
        ticket_service.transition(ticket, TicketStatus.open)
        return _Reply(decision=decision, ctx=ctx, language=lang, intent=None, quick_replies=[])

    def _bot_reply(self, work: _Work) -> ticket_service.BotReply:
        reply = work.reply
        if reply is None or work.message_id is None:
            raise RuntimeError("only a decided, inserted message with an answer gets a bot reply")
        text = reply.decision.reply_text or self._phrase(reply.decision, work.ticket, reply.ctx, reply.language)
        return ticket_service.BotReply(
            ticket=work.ticket, text=text, language=reply.language, intent=reply.intent,
            quick_replies=reply.quick_replies, in_reply_to_id=work.message_id,
            reply_refs=[work.inbound.external_message_id],
        )

    def _finish(self, session: AsyncSession, work: _Work) -> IngestResult:
        ticket, message_id = work.ticket, work.message_id
        if message_id is None or work.action is None:
            raise RuntimeError("a message was finished before it was decided")
        emit(session, "tickets", ticket_service.ticket_event(ticket, work.threading))
        return IngestResult(ticket_id=ticket.id, ticket_number=ticket.number, message_id=message_id,
                            customer_id=ticket.customer_id, created=True, action=work.action.value,
                            reply_message_ids=work.replies)

    def _phrase(self, decision: Decision, ticket: Ticket, ctx: DecisionContext, lang: str) -> str:
        values: dict[str, Any] = {"ticket": ticket.number,
                                  "team": texts.team_name(ticket.team.slug if ticket.team else None, lang),
                                  "order": ctx.order_number or ""}
        if ctx.order is not None:
            values.update(order=ctx.order.number, status=texts.order_status(ctx.order.status, lang),
                          description=f" {ctx.order.description}" if ctx.order.description else "")
        return texts.text(decision.reply_key or "escalated", lang, **values)
