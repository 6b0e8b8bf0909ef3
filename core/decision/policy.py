"""The decision policy: what happens to a customer message after the NLU has read it.

A pure function of the parse and the ticket's state, so every rule is testable without a database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from core.tickets.models import Priority, TicketStatus
from nlu.protocol import Parse

HANDOFF_INTENT = "human_handoff"
ORDER_INTENT = "order_status"
CONTRACT_INTENT = "contract_info"
TERMINATE_INTENT = "contract_terminate"
COMPLAINT_INTENT = "complaint"


class Action(enum.StrEnum):
    answer = "answer"  # the bot answers; the ticket stays with the bot
    escalate = "escalate"  # queue for humans, with an acknowledgement to the customer
    agent = "agent"  # the ticket is already with humans: store and notify, the bot stays quiet
    notify = "notify"  # the ticket stays with humans, and the bot answers a waiting customer (status, self-service)
    ignore = "ignore"  # an auto-reply or bounce: store, never answer (no mail loops)


class IntentAction(enum.StrEnum):
    """What the bot does with a confidently read intent, as declared per intent (core/nlu_admin/actions.py)."""

    answer = "answer"  # an FAQ: the intent's answer text; the ticket stays with the bot
    answer_and_escalate = "answer_and_escalate"  # the intent's answer (a hand-over text), then the queue
    escalate = "escalate"  # straight to the queue with the hand-over notice
    self_service = "self_service"  # the bot looks the answer up (order status)


@dataclass(frozen=True, slots=True)
class OrderInfo:
    number: str
    status: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class ContractInfo:
    number: str
    tariff: str
    end_date: date
    status: str
    auto_renewal: bool


@dataclass(frozen=True, slots=True)
class Request:
    """One of several requests read in one message, with what the bot could do with it alone."""

    intent: str
    faq_answer: str | None = None
    intent_action: IntentAction | None = None

    @property
    def answerable(self) -> bool:
        """An FAQ the bot answers on its own; anything else (a person, a lookup, a hand-over) needs the queue."""
        action = self.intent_action or (IntentAction.answer if self.faq_answer else IntentAction.escalate)
        return action == IntentAction.answer and bool(self.faq_answer) and self.intent != HANDOFF_INTENT


@dataclass(frozen=True, slots=True)
class DecisionContext:
    parse: Parse | None  # None: the NLU engine was unavailable
    ticket_status: TicketStatus
    assigned: bool
    failed_bot_answers: int
    last_bot_intent: str | None
    auto_reply: bool = False
    faq_answer: str | None = None
    order_number: str | None = None
    order: OrderInfo | None = None
    # The contract asked about (by number, or the customer's only current one) and how many the customer has.
    contract_number: str | None = None
    contract: ContractInfo | None = None
    contract_count: int = 0
    # The declared action of the (confident) intent; None: answer when there is an answer text, else escalate.
    intent_action: IntentAction | None = None
    # While the ticket waits for humans: an agent has answered already (then the bot never speaks), the queue lets
    # the bot answer self-service questions, and a "still with the team" notice may go out now (not sent recently).
    agent_answered: bool = False
    self_service_while_waiting: bool = False
    waiting_notice_allowed: bool = True
    # Two or more requests read in this one message (the parse's `requests`), top one first; empty for one.
    requests: tuple[Request, ...] = ()
    # An open incident (outage) answers this appeal: its message in the customer's language (core/incidents).
    incident_text: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    route_intent: str | None = None
    reply_key: str | None = None  # one of the bot's phrases (core.decision.texts)
    reply_text: str | None = None  # an FAQ answer, already in the customer's language
    priority: Priority | None = None
    failed_answer: bool = False  # the answer asks again / did not find: two in a row escalate
    intents: tuple[str, ...] = ()  # every request of a message that asked several things, for the ticket
    # A looked-up answer (one of the bot's phrases, e.g. "order_status") a several-request reply carries after its
    # FAQ answers and before any hand-over notice.
    lookup_key: str | None = None


WITH_HUMANS = (TicketStatus.open, TicketStatus.pending)


def decide(ctx: DecisionContext) -> Decision:
    parse = ctx.parse
    intent = parse.intent if parse is not None and parse.confident else None
    priority = Priority.high if intent == COMPLAINT_INTENT else None
    if ctx.auto_reply:
        return Decision(Action.ignore, "auto_reply")
    if ctx.ticket_status in WITH_HUMANS or ctx.assigned:
        return _waiting(ctx, intent, priority)
    if parse is None:
        return Decision(Action.escalate, "nlu_unavailable", reply_key="nlu_unavailable")
    if ctx.incident_text is not None and intent is not None:
        # A known outage: the customer hears what is known and that they will be told of the fix; the ticket stays
        # with the bot, linked to the incident, and is resolved with it.
        return Decision(Action.answer, "incident", route_intent=intent, reply_text=ctx.incident_text,
                        priority=priority)
    if len(ctx.requests) > 1:
        return _several_requests(ctx, priority)
    if intent is None:
        return Decision(Action.escalate, "low_confidence", route_intent=parse.intent, reply_key="escalated")
    action = ctx.intent_action or (IntentAction.answer if ctx.faq_answer else IntentAction.escalate)
    if intent == HANDOFF_INTENT:  # always to a person (core/nlu_admin/actions.py refuses declaring otherwise)
        return Decision(Action.escalate, "handoff", route_intent=ctx.last_bot_intent, reply_key="handoff",
                        reply_text=ctx.faq_answer if action == IntentAction.answer_and_escalate else None)
    if action == IntentAction.escalate:
        return Decision(Action.escalate, "declared_escalate", route_intent=intent, reply_key="escalated",
                        priority=priority)
    if action == IntentAction.answer_and_escalate:
        return Decision(Action.escalate, "declared_answer_and_escalate", route_intent=intent, reply_key="escalated",
                        reply_text=ctx.faq_answer, priority=priority)
    if action == IntentAction.self_service:
        if intent == ORDER_INTENT:
            return _order_status(ctx)
        if intent == CONTRACT_INTENT:
            return _contract_info(ctx)
        return Decision(Action.escalate, "no_self_service", route_intent=intent, reply_key="escalated",
                        priority=priority)
    if ctx.faq_answer:
        if ctx.last_bot_intent == intent:
            # The same answer again would not help: the customer asks again because it did not.
            return Decision(Action.escalate, "repeated_question", route_intent=intent, reply_key="escalated",
                            priority=priority)
        return Decision(Action.answer, "faq", route_intent=intent, reply_text=ctx.faq_answer, priority=priority)
    return Decision(Action.escalate, "needs_human", route_intent=intent, reply_key="escalated", priority=priority)


def _several_requests(ctx: DecisionContext, priority: Priority | None) -> Decision:
    """A message asking several things: the FAQs among them are answered, an order whose status the bot can look
    up is answered from its record, and whatever needs a person goes to the queue with every request on record,
    so no request is answered while another is silently dropped."""
    looked_up = next((r for r in ctx.requests if _order_looked_up(ctx, r)), None)
    answerable = [r for r in ctx.requests if r.answerable]
    rest = [r for r in ctx.requests if not r.answerable and r is not looked_up]
    intents = tuple(r.intent for r in ctx.requests)
    answers = "\n\n".join(r.faq_answer for r in answerable if r.faq_answer) or None
    lookup_key = "order_status" if looked_up is not None else None
    if any(r.intent == COMPLAINT_INTENT for r in ctx.requests):
        priority = Priority.high
    if not rest:
        return Decision(Action.answer, "several_answered" if looked_up else "several_faqs", route_intent=intents[0],
                        reply_text=answers, priority=priority, intents=intents, lookup_key=lookup_key)
    return Decision(Action.escalate, "several_requests", route_intent=rest[0].intent, reply_key="escalated",
                    reply_text=answers, priority=priority, intents=intents, lookup_key=lookup_key)


def _order_looked_up(ctx: DecisionContext, request: Request) -> bool:
    """An order-status request declared self-service whose order the bot found (the customer's own, by number):
    answered from the record like a one-request message; without the order it goes to a person with the rest."""
    return (request.intent == ORDER_INTENT and request.intent_action == IntentAction.self_service
            and ctx.order is not None)


def _waiting(ctx: DecisionContext, intent: str | None, priority: Priority | None) -> Decision:
    """A message on a ticket with humans: it joins the ticket, and the bot stays quiet unless the customer, still
    waiting for a first answer, asks for a person again (a short status notice, a few minutes apart at most) or
    asks a self-service question the queue lets the bot answer."""
    if ctx.agent_answered or intent is None:
        return Decision(Action.agent, "with_humans", priority=priority)
    if intent == HANDOFF_INTENT:
        if not ctx.waiting_notice_allowed:
            return Decision(Action.agent, "waiting_notice_sent_recently", priority=priority)
        return Decision(Action.notify, "still_waiting", reply_key="still_waiting", priority=priority)
    if ctx.self_service_while_waiting and ctx.intent_action == IntentAction.self_service and intent in (
            ORDER_INTENT, CONTRACT_INTENT):
        looked_up = _order_status(ctx) if intent == ORDER_INTENT else _contract_info(ctx)
        if looked_up.action == Action.answer and looked_up.reply_key is not None:
            return Decision(Action.notify, "self_service_while_waiting", route_intent=intent,
                            reply_key=looked_up.reply_key, priority=priority)
    return Decision(Action.agent, "with_humans", priority=priority)


def _order_status(ctx: DecisionContext) -> Decision:
    second_failure = ctx.failed_bot_answers >= 1
    if ctx.order is not None:
        return Decision(Action.answer, "order_found", route_intent=ORDER_INTENT, reply_key="order_status")
    if second_failure:
        return Decision(Action.escalate, "second_failed_answer", route_intent=ORDER_INTENT, reply_key="escalated")
    if ctx.order_number is None:
        return Decision(Action.answer, "order_number_missing", route_intent=ORDER_INTENT,
                        reply_key="ask_order_number", failed_answer=True)
    return Decision(Action.answer, "order_not_found", route_intent=ORDER_INTENT, reply_key="order_not_found",
                    failed_answer=True)


def _contract_info(ctx: DecisionContext) -> Decision:
    """The contract from its record; with several contracts and no number, the bot asks which; with none on
    record, the intent's general answer (or a person)."""
    if ctx.contract is not None:
        return Decision(Action.answer, "contract_found", route_intent=CONTRACT_INTENT, reply_key="contract_info")
    if ctx.failed_bot_answers >= 1:
        return Decision(Action.escalate, "second_failed_answer", route_intent=CONTRACT_INTENT, reply_key="escalated")
    if ctx.contract_number is not None:
        return Decision(Action.answer, "contract_not_found", route_intent=CONTRACT_INTENT,
                        reply_key="contract_not_found", failed_answer=True)
    if ctx.contract_count > 1:
        return Decision(Action.answer, "contract_number_missing", route_intent=CONTRACT_INTENT,
                        reply_key="ask_contract_number", failed_answer=True)
    if ctx.faq_answer:
        return Decision(Action.answer, "contract_faq", route_intent=CONTRACT_INTENT, reply_text=ctx.faq_answer)
    return Decision(Action.escalate, "needs_human", route_intent=CONTRACT_INTENT, reply_key="escalated")
