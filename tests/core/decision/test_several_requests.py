"""Several requests in one message: FAQs answered, the rest to the queue, every request on record."""

from __future__ import annotations

from core.decision.policy import Action, DecisionContext, IntentAction, OrderInfo, Request, decide
from core.tickets.models import Priority, TicketStatus
from nlu.protocol import IntentScore, Parse


def parse(*intents: str) -> Parse:
    return Parse(text="x", intent=intents[0], confidence=0.99, confident=True, language="en",
                 requests=tuple(IntentScore(i, 0.99) for i in intents))


def ctx(p: Parse, *requests: Request, **kw: object) -> DecisionContext:
    values: dict[str, object] = {"ticket_status": TicketStatus.new, "assigned": False, "failed_bot_answers": 0,
                                 "last_bot_intent": None}
    values.update(kw)
    return DecisionContext(parse=p, requests=requests, **values)  # type: ignore[arg-type]


def test_an_faq_is_answered_and_the_other_request_escalated_with_both_on_record() -> None:
    d = decide(ctx(parse("personal_data_change", "order_status"),
                   Request("personal_data_change", "Send us a scan of your passport."),
                   Request("order_status", None, IntentAction.self_service)))
    assert (d.action, d.reason, d.route_intent) == (Action.escalate, "several_requests", "order_status")
    assert d.reply_text == "Send us a scan of your passport." and d.reply_key == "escalated"
    assert d.intents == ("personal_data_change", "order_status")


def test_two_faqs_are_both_answered() -> None:
    d = decide(ctx(parse("roaming", "balance_check"), Request("roaming", "Roaming costs 5."),
                   Request("balance_check", "Your balance is in the app.")))
    assert d.action == Action.answer and d.reason == "several_faqs"
    assert d.reply_text == "Roaming costs 5.\n\nYour balance is in the app."
    assert d.intents == ("roaming", "balance_check")


def test_nothing_answerable_escalates_both() -> None:
    d = decide(ctx(parse("internet_down", "complaint"), Request("internet_down", None),
                   Request("complaint", "We are sorry.", IntentAction.answer_and_escalate)))
    assert (d.action, d.route_intent, d.reply_text) == (Action.escalate, "internet_down", None)
    assert d.priority == Priority.high and d.intents == ("internet_down", "complaint")


def test_a_handoff_among_the_requests_is_never_answered_away() -> None:
    d = decide(ctx(parse("office_hours", "human_handoff"), Request("office_hours", "24/7"),
                   Request("human_handoff", "An agent will reply.", IntentAction.answer)))
    assert (d.action, d.route_intent, d.reply_text) == (Action.escalate, "human_handoff", "24/7")


def test_on_a_ticket_with_humans_the_bot_stays_quiet() -> None:
    d = decide(ctx(parse("roaming", "balance_check"), Request("roaming", "a"), Request("balance_check", "b"),
                   ticket_status=TicketStatus.open))
    assert d.action == Action.agent


def test_one_request_decides_as_before() -> None:
    d = decide(ctx(parse("office_hours"), faq_answer="24/7"))
    assert d.action == Action.answer and d.intents == ()


def test_an_order_found_among_several_requests_is_looked_up_not_handed_over() -> None:
    order = OrderInfo("ORD-123456", "shipped")
    d = decide(ctx(parse("personal_data_change", "order_status"),
                   Request("personal_data_change", "Send us a scan of your passport."),
                   Request("order_status", None, IntentAction.self_service), order=order,
                   order_number="ORD-123456"))
    assert (d.action, d.reason, d.lookup_key) == (Action.answer, "several_answered", "order_status")
    assert d.reply_text == "Send us a scan of your passport."
    assert d.intents == ("personal_data_change", "order_status")


def test_a_looked_up_order_beside_a_request_for_a_person_still_hands_that_one_over() -> None:
    d = decide(ctx(parse("order_status", "internet_down"), Request("order_status", None, IntentAction.self_service),
                   Request("internet_down", None), order=OrderInfo("ORD-1", "new"), order_number="ORD-1"))
    assert (d.action, d.route_intent, d.lookup_key) == (Action.escalate, "internet_down", "order_status")


def test_an_order_not_found_among_several_requests_goes_to_a_person() -> None:
    d = decide(ctx(parse("personal_data_change", "order_status"), Request("personal_data_change", "Scan."),
                   Request("order_status", None, IntentAction.self_service), order_number="ORD-404"))
    assert (d.action, d.route_intent, d.lookup_key) == (Action.escalate, "order_status", None)


def test_an_order_declared_for_people_is_not_looked_up() -> None:
    d = decide(ctx(parse("personal_data_change", "order_status"), Request("personal_data_change", "Scan."),
                   Request("order_status", None, IntentAction.escalate), order=OrderInfo("ORD-1", "new")))
    assert (d.action, d.route_intent, d.lookup_key) == (Action.escalate, "order_status", None)
