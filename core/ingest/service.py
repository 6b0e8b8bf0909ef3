"""The ingest pipeline: one inbound message, one transaction.

idempotency -> identity -> thread -> persist -> decision (with the NLU parse) -> outbox, all committed
together. The NLU parse runs before the transaction so a slow engine never holds a database connection.
A concurrent duplicate loses the race on the unique (channel, external id) key and returns the winner's result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.customers import repository as customer_repo
from core.customers import service as customer_service
from core.customers.models import ChannelIdentity, Customer
from core.db.base import utcnow
from core.decision import texts
from core.decision.policy import Action, Decision, DecisionContext, OrderInfo, decide
from core.events import EventBus, emit, take_pending
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

    async def ingest(self, inbound: InboundMessage) -> IngestResult:
        """Ingest one message; a redelivery returns the original result and writes nothing."""
        parse = await self._parse(inbound)
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.sessionmaker() as session:
                    async with session.begin():
                        result = await self._ingest_in_transaction(session, inbound, parse)
                    self.bus.publish_all(take_pending(session))
                return result
            except (IntegrityError, OperationalError) as exc:
                # A concurrent transaction inserted the same message or the same new identity first (or,
                # on SQLite, held the write lock too long): its result is now visible, or a retry succeeds.
                existing = await self.find_existing(inbound.channel, inbound.external_message_id)
                if existing is not None:
                    return existing
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                log.info("ingest retry", extra={"attempt": attempt + 1, "error": type(exc).__name__})
        raise AssertionError("unreachable")

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
        if isinstance(payload, bytes):
            text = payload.decode("utf-8", errors="backslashreplace")
        else:
            text = payload
        async with self.sessionmaker() as session:
            async with session.begin():
                row = QuarantinedPayload(channel=channel, reason=reason[:4000], payload=text,
                                         content_type=content_type[:100])
                session.add(row)
                await session.flush()
                emit(session, "quarantine", {"id": row.id, "channel": channel, "reason": row.reason})
            self.bus.publish_all(take_pending(session))
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

    async def _ingest_in_transaction(
        self, session: AsyncSession, inbound: InboundMessage, parse: Parse | None
    ) -> IngestResult:
        existing = await self._existing(session, inbound.channel, inbound.external_message_id)
        if existing is not None:
            return existing

        identity = await customer_service.resolve_identity(session, inbound.channel, inbound.sender)
        customer = identity.customer
        if customer.id is not None:
            await customer_repo.lock_customer(session, customer.id)
        ticket, threading = await self._thread(session, customer, identity, inbound)

        language = (parse.language if parse and parse.text.strip() else None) or inbound.language_hint \
            or ticket.language or customer.language
        now = utcnow()
        ticket.identity = identity
        ticket.last_customer_message_at = ticket.last_customer_message_at or now
        ticket.updated_at = now
        ticket.language = language or ticket.language
        if customer.language is None and language is not None:
            customer.language = language
        if ticket.id is None:
            await session.flush()  # the new ticket's number goes into the bot's answer
        if ticket.status == TicketStatus.pending:
            ticket_service.transition(ticket, TicketStatus.open)

        message = Message(
            ticket_id=ticket.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
            channel=inbound.channel, external_message_id=inbound.external_message_id, text=inbound.text,
            html=inbound.html, attachments=[a.model_dump(exclude_none=True) for a in inbound.attachments],
            intent=parse.intent if parse else None, confidence=parse.confidence if parse else None,
            language=language,
            entities=[{"type": e.type, "value": e.value, "start": e.start, "end": e.end}
                      for e in (parse.entities if parse else ())],
            extra=dict(inbound.extra), created_at=inbound.received_at,
        )
        session.add(message)

        # Reads below must not flush half-built rows: everything is written by the one flush at the end.
        with session.no_autoflush:
            ctx = await self._context(session, ticket, inbound, parse, language, new_ticket=threading == "created")
            decision = decide(ctx)
            message.extra = {**message.extra, "action": decision.action.value, "reason": decision.reason}
            replies = await self._apply(session, ticket, message, decision, ctx, language)
        await session.flush()

        ticket_id, customer_id, channel, thread_key = ticket.id, ticket.customer_id, ticket.channel, ticket.thread_key
        emit(session, "messages", {"ticket_id": ticket_id, "message_id": message.id, "direction": "inbound",
                                   "author_kind": "customer", "customer_id": customer_id,
                                   "channel": channel, "thread_key": thread_key})
        emit(session, "tickets", ticket_service.ticket_event(ticket, threading))
        return IngestResult(ticket_id=ticket_id, ticket_number=ticket.number, message_id=message.id,
                            customer_id=customer_id, created=True, action=decision.action.value,
                            reply_message_ids=[r.id for r in replies])

    async def _thread(
        self, session: AsyncSession, customer: Customer, identity: ChannelIdentity, inbound: InboundMessage
    ) -> tuple[Ticket, str]:
        """Continue an open ticket, reopen a recently resolved one, or start a new one."""
        candidate: Ticket | None = None
        if customer.id is not None:
            candidate = await self._find_thread(session, customer, inbound)
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
        return ticket, "created"

    async def _find_thread(self, session: AsyncSession, customer: Customer, inbound: InboundMessage
                           ) -> Ticket | None:
        candidate = await ticket_repo.find_by_references(session, customer.id, inbound.channel, inbound.references)
        if candidate is None and inbound.ticket_number_hint:
            number = parse_ticket_number(inbound.ticket_number_hint)
            if number is not None:
                found = await ticket_repo.get(session, number)
                # Scoped to the sender: quoting someone else's ticket number never joins their thread.
                if found is not None and found.customer_id == customer.id:
                    candidate = found
        if candidate is None and inbound.thread_key:
            candidate = await ticket_repo.find_latest_by_thread(session, customer.id, inbound.channel,
                                                                inbound.thread_key)
        for _ in range(5):
            if candidate is None or candidate.merged_into_id is None:
                break
            candidate = await ticket_repo.get(session, candidate.merged_into_id)
        return candidate

    async def _context(self, session: AsyncSession, ticket: Ticket, inbound: InboundMessage,
                       parse: Parse | None, language: str | None, *, new_ticket: bool) -> DecisionContext:
        last_bot_intent = None if new_ticket else (await session.scalars(
            select(Message.intent).where(Message.ticket_id == ticket.id, Message.author_kind == AuthorKind.bot)
            .order_by(Message.id.desc()).limit(1)
        )).first()
        intent = parse.intent if parse and parse.confident else None
        order_number: str | None = None
        order: OrderInfo | None = None
        if intent == "order_status" and parse is not None:
            entity = parse.entity("order_number")
            order_number = entity.value if entity else None
            if order_number:
                row = (await session.scalars(select(Order).where(Order.number == order_number))).first()
                # Only the order's own customer (or an order not linked to anyone) gets its status.
                if row is not None and row.customer_id in (None, ticket.customer_id):
                    order = OrderInfo(row.number, row.status, row.description)
        faq = self.responses(intent, language or "en") if intent else None
        return DecisionContext(
            parse=parse, ticket_status=ticket.status, assigned=ticket.assignee_id is not None,
            failed_bot_answers=ticket.failed_bot_answers, last_bot_intent=last_bot_intent,
            auto_reply=inbound.auto_reply, faq_answer=faq, order_number=order_number, order=order,
        )

    async def _apply(self, session: AsyncSession, ticket: Ticket, inbound: Message, decision: Decision,
                     ctx: DecisionContext, language: str | None) -> list[Message]:
        parse = ctx.parse
        if parse is not None and parse.confident and decision.action in (Action.answer, Action.escalate):
            ticket.intent = parse.intent
            ticket.intent_confidence = parse.confidence
        if decision.priority is not None and decision.priority.rank > ticket.priority.rank:
            ticket.priority = decision.priority
        if decision.action in (Action.agent, Action.ignore):
            return []
        refs = [inbound.external_message_id] if inbound.external_message_id else []

        lang = language or "en"
        if decision.action == Action.answer:
            ticket_service.transition(ticket, TicketStatus.bot)
            ticket.failed_bot_answers = ticket.failed_bot_answers + 1 if decision.failed_answer else 0
            reply = decision.reply_text or self._phrase(decision, ticket, ctx, lang)
            message = await ticket_service.add_outbound(
                session, ticket, text=reply, author_kind=AuthorKind.bot, language=lang,
                intent=decision.route_intent,
                quick_replies=[{"title": texts.text("talk_to_operator", lang), "payload": "/human_handoff"}],
                reply_refs=refs, in_reply_to=inbound,
            )
            return [message]

        team = await routing.team_for_intent(session, decision.route_intent)
        if team is not None:
            ticket.team_id = team.id
            ticket.team = team
        ticket.failed_bot_answers = 0
        ticket_service.transition(ticket, TicketStatus.open)
        message = await ticket_service.add_outbound(
            session, ticket, text=self._phrase(decision, ticket, ctx, lang), author_kind=AuthorKind.bot,
            language=lang, intent=None, reply_refs=refs, in_reply_to=inbound,
        )
        return [message]

    def _phrase(self, decision: Decision, ticket: Ticket, ctx: DecisionContext, lang: str) -> str:
        values: dict[str, Any] = {"ticket": ticket.number,
                                  "team": texts.team_name(ticket.team.slug if ticket.team else None, lang),
                                  "order": ctx.order_number or ""}
        if ctx.order is not None:
            values.update(order=ctx.order.number, status=texts.order_status(ctx.order.status, lang),
                          description=f" {ctx.order.description}" if ctx.order.description else "")
        return texts.text(decision.reply_key or "escalated", lang, **values)
