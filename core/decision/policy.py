"""The decision policy: what happens to a customer message after the NLU has read it.

A pure function of the parse and the ticket's state, so every rule is testable without a database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.tickets.models import Priority, TicketStatus
from nlu.protocol import Parse

HANDOFF_INTENT = "human_handoff"
ORDER_INTENT = "order_status"
COMPLAINT_INTENT = "complaint"


class Action(enum.StrEnum):
    answer = "answer"  # the bot answers; the ticket stays with the bot
    escalate = "escalate"  # queue for humans, with an acknowledgement to the customer
    agent = "agent"  # the ticket is already with humans: store and notify, the bot stays quiet
    ignore = "ignore"  # an auto-reply or bounce: store, never answer (no mail loops)


@dataclass(frozen=True, slots=True)
class OrderInfo:
    number: str
    status: str
    description: str = ""


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


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    route_intent: str | None = None
    reply_key: str | None = None  # one of the bot's phrases (core.decision.texts)
    reply_text: str | None = None  # an FAQ answer, already in the customer's language
    priority: Priority | None = None
    failed_answer: bool = False  # the answer asks again / did not find: two in a row escalate


WITH_HUMANS = (TicketStatus.open, TicketStatus.pending)


def decide(ctx: DecisionContext) -> Decision:
    parse = ctx.parse
    intent = parse.intent if parse is not None and parse.confident else None
    priority = Priority.high if intent == COMPLAINT_INTENT else None
    if ctx.auto_reply:
        return Decision(Action.ignore, "auto_reply")
    if ctx.ticket_status in WITH_HUMANS or ctx.assigned:
        return Decision(Action.agent, "with_humans", priority=priority)
    if parse is None:
        return Decision(Action.escalate, "nlu_unavailable", reply_key="nlu_unavailable")
    if intent is None:
        return Decision(Action.escalate, "low_confidence", route_intent=parse.intent, reply_key="escalated")
    if intent == HANDOFF_INTENT:
        return Decision(Action.escalate, "handoff", route_intent=ctx.last_bot_intent, reply_key="handoff")
    if intent == COMPLAINT_INTENT:
        return Decision(Action.escalate, "complaint", route_intent=intent, reply_key="escalated",
                        priority=Priority.high)
    if intent == ORDER_INTENT:
        return _order_status(ctx)
    if ctx.faq_answer:
        if ctx.last_bot_intent == intent:
            # The same answer again would not help: the customer asks again because it did not.
            return Decision(Action.escalate, "repeated_question", route_intent=intent, reply_key="escalated")
        return Decision(Action.answer, "faq", route_intent=intent, reply_text=ctx.faq_answer)
    return Decision(Action.escalate, "needs_human", route_intent=intent, reply_key="escalated")


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
