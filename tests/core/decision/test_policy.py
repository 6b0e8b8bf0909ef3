"""The decision policy: a pure function, tested rule by rule."""

from __future__ import annotations

from core.decision.policy import Action, DecisionContext, OrderInfo, decide
from core.tickets.models import Priority, TicketStatus
from nlu.protocol import Entity, Parse


def parse(intent: str | None, confident: bool = True, entities: tuple[Entity, ...] = ()) -> Parse:
    return Parse(text="x", intent=intent, confidence=0.99 if confident else 0.3, confident=confident,
                 language="en", entities=entities)


def ctx(p: Parse | None, **kw: object) -> DecisionContext:
    values: dict[str, object] = {"ticket_status": TicketStatus.new, "assigned": False, "failed_bot_answers": 0,
                                 "last_bot_intent": None}
    values.update(kw)
    return DecisionContext(parse=p, **values)  # type: ignore[arg-type]


def test_faq_answered_when_confident() -> None:
    d = decide(ctx(parse("office_hours"), faq_answer="24/7"))
    assert d.action == Action.answer and d.reply_text == "24/7"


def test_low_confidence_escalates_with_best_guess() -> None:
    d = decide(ctx(parse("billing_question", confident=False), faq_answer="x"))
    assert d.action == Action.escalate and d.reason == "low_confidence" and d.route_intent == "billing_question"


def test_handoff_escalates() -> None:
    assert decide(ctx(parse("human_handoff"))).action == Action.escalate


def test_engine_unavailable_escalates() -> None:
    d = decide(ctx(None))
    assert d.action == Action.escalate and d.reason == "nlu_unavailable"


def test_complaint_raises_priority() -> None:
    d = decide(ctx(parse("complaint")))
    assert d.action == Action.escalate and d.priority == Priority.high


def test_intent_without_answer_routes_to_humans() -> None:
    d = decide(ctx(parse("internet_down")))
    assert d.action == Action.escalate and d.route_intent == "internet_down"


def test_same_answer_twice_in_a_row_escalates() -> None:
    d = decide(ctx(parse("office_hours"), faq_answer="24/7", ticket_status=TicketStatus.bot,
                   last_bot_intent="office_hours"))
    assert d.action == Action.escalate and d.reason == "repeated_question"


def test_order_status_flow() -> None:
    ask = decide(ctx(parse("order_status")))
    assert ask.action == Action.answer and ask.reply_key == "ask_order_number" and ask.failed_answer
    again = decide(ctx(parse("order_status"), failed_bot_answers=1))
    assert again.action == Action.escalate and again.reason == "second_failed_answer"
    found = decide(ctx(parse("order_status"), order_number="ORD-1", order=OrderInfo("ORD-1", "shipped")))
    assert found.action == Action.answer and found.reply_key == "order_status" and not found.failed_answer
    missing = decide(ctx(parse("order_status"), order_number="ORD-9"))
    assert missing.reply_key == "order_not_found" and missing.failed_answer


def test_bot_stays_quiet_on_tickets_with_humans_and_on_auto_replies() -> None:
    assert decide(ctx(parse("greeting"), ticket_status=TicketStatus.open, faq_answer="hi")).action == Action.agent
    assert decide(ctx(parse("greeting"), assigned=True, faq_answer="hi")).action == Action.agent
    assert decide(ctx(parse("greeting"), auto_reply=True, faq_answer="hi")).action == Action.ignore
    with_humans = decide(ctx(parse("complaint"), ticket_status=TicketStatus.pending))
    assert with_humans.action == Action.agent and with_humans.priority == Priority.high


def test_order_status_names_in_the_customers_language() -> None:
    from core.decision.texts import order_status

    assert order_status("shipped", "ru") == "отправлен"
    assert order_status("In transit", "en") == "on its way"
    assert order_status("in-transit", "ru") == "в пути"
    assert order_status("handed to DHL", "ru") == "handed to DHL"
