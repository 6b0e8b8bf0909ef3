"""The decision policy: a pure function, tested rule by rule."""

from __future__ import annotations

from datetime import date

import pytest

from core.decision.policy import Action, ContractInfo, DecisionContext, IntentAction, OrderInfo, decide
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


SELF = IntentAction.self_service


def test_order_status_flow() -> None:
    ask = decide(ctx(parse("order_status"), intent_action=SELF))
    assert ask.action == Action.answer and ask.reply_key == "ask_order_number" and ask.failed_answer
    again = decide(ctx(parse("order_status"), failed_bot_answers=1, intent_action=SELF))
    assert again.action == Action.escalate and again.reason == "second_failed_answer"
    found = decide(ctx(parse("order_status"), order_number="ORD-1", order=OrderInfo("ORD-1", "shipped"),
                       intent_action=SELF))
    assert found.action == Action.answer and found.reply_key == "order_status" and not found.failed_answer
    missing = decide(ctx(parse("order_status"), order_number="ORD-9", intent_action=SELF))
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


# -- declared intent actions ------------------------------------------------------------------------------------


def test_declared_escalate_wins_over_an_answer_text() -> None:
    d = decide(ctx(parse("contract_terminate"), faq_answer="We are sorry to see you go.",
                   intent_action=IntentAction.escalate))
    assert d.action == Action.escalate and d.reason == "declared_escalate" and d.reply_text is None
    assert d.route_intent == "contract_terminate"


def test_answer_and_escalate_says_the_text_then_queues() -> None:
    d = decide(ctx(parse("data_deletion"), faq_answer="I'll pass it on.",
                   intent_action=IntentAction.answer_and_escalate))
    assert d.action == Action.escalate and d.reply_text == "I'll pass it on." and d.reply_key == "escalated"
    assert d.route_intent == "data_deletion"


def test_complaint_keeps_high_priority_whatever_its_action() -> None:
    for action in IntentAction:
        assert decide(ctx(parse("complaint"), faq_answer="sorry", intent_action=action)).priority == Priority.high


def test_declared_answer_without_text_still_escalates() -> None:
    d = decide(ctx(parse("roaming"), intent_action=IntentAction.answer))
    assert d.action == Action.escalate and d.reason == "needs_human"


def test_self_service_without_a_lookup_escalates() -> None:
    d = decide(ctx(parse("roaming"), faq_answer="x", intent_action=IntentAction.self_service))
    assert d.action == Action.escalate and d.reason == "no_self_service"


def test_contract_questions_are_answered_from_the_record() -> None:
    info = ContractInfo("12345678", "Home 500", date(2027, 1, 31), "active", True)
    self_service = {"intent_action": IntentAction.self_service}
    d = decide(ctx(parse("contract_info"), contract=info, contract_count=2, **self_service))
    assert (d.action, d.reason, d.reply_key) == (Action.answer, "contract_found", "contract_info")
    d = decide(ctx(parse("contract_info"), contract_count=2, **self_service))
    assert (d.reason, d.reply_key, d.failed_answer) == ("contract_number_missing", "ask_contract_number", True)
    d = decide(ctx(parse("contract_info"), contract_number="99999999", **self_service))
    assert (d.reason, d.reply_key) == ("contract_not_found", "contract_not_found")
    d = decide(ctx(parse("contract_info"), contract_number="99999999", failed_bot_answers=1, **self_service))
    assert (d.action, d.reason) == (Action.escalate, "second_failed_answer")
    d = decide(ctx(parse("contract_info"), faq_answer="See your account.", **self_service))
    assert (d.action, d.reason, d.reply_text) == (Action.answer, "contract_faq", "See your account.")
    d = decide(ctx(parse("contract_info"), **self_service))
    assert (d.action, d.reason) == (Action.escalate, "needs_human")


def test_handoff_routes_to_the_last_topic() -> None:
    d = decide(ctx(parse("human_handoff"), ticket_status=TicketStatus.bot, last_bot_intent="roaming",
                   intent_action=IntentAction.escalate))
    assert d.action == Action.escalate and d.reason == "handoff" and d.route_intent == "roaming"


@pytest.mark.parametrize("declared", [None, IntentAction.answer, IntentAction.self_service])
def test_handoff_reaches_a_person_whatever_is_declared(declared: IntentAction | None) -> None:
    d = decide(ctx(parse("human_handoff"), ticket_status=TicketStatus.bot, faq_answer="One moment.",
                   intent_action=declared))
    assert d.action == Action.escalate and d.reason == "handoff" and d.reply_text is None


# -- while the customer waits for the team ----------------------------------------------------------------------

WAITING = {"ticket_status": TicketStatus.open}


def test_repeat_handoff_while_waiting_gets_a_notice_then_silence() -> None:
    d = decide(ctx(parse("human_handoff"), **WAITING))
    assert d.action == Action.notify and d.reply_key == "still_waiting"
    quiet = decide(ctx(parse("human_handoff"), waiting_notice_allowed=False, **WAITING))
    assert quiet.action == Action.agent and quiet.reason == "waiting_notice_sent_recently"


def test_no_notice_once_an_agent_answered() -> None:
    d = decide(ctx(parse("human_handoff"), agent_answered=True, **WAITING))
    assert d.action == Action.agent


def test_other_messages_while_waiting_join_the_ticket_quietly() -> None:
    for intent in ("greeting", "roaming", None):
        d = decide(ctx(parse(intent), faq_answer="x", intent_action=IntentAction.answer, **WAITING))
        assert d.action == Action.agent


def test_self_service_while_waiting_only_where_the_queue_allows() -> None:
    order = {"order_number": "ORD-1", "order": OrderInfo("ORD-1", "shipped"), "intent_action": SELF}
    assert decide(ctx(parse("order_status"), **order, **WAITING)).action == Action.agent
    d = decide(ctx(parse("order_status"), self_service_while_waiting=True, **order, **WAITING))
    assert d.action == Action.notify and d.reply_key == "order_status"
    asked = decide(ctx(parse("order_status"), self_service_while_waiting=True, intent_action=SELF, **WAITING))
    assert asked.action == Action.notify and asked.reply_key == "ask_order_number"
