"""What the bot does with each intent: declared by admins, with shipped defaults for the shipped intents.

An intent nobody declared and the defaults do not name (an admin's new intent, one only a Rasa model knows) is
answered when it has an answer text and escalated when it has none, so teaching the bot a new FAQ stays one step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.db.base import utcnow
from core.decision.policy import IntentAction
from core.errors import ValidationFailedError
from core.nlu_admin import repository, service
from core.nlu_admin.models import IntentActionRule
from core.users.models import User

DEFAULT_ACTIONS: dict[str, IntentAction] = {
    # The shipped answers of these say "I am passing this to a specialist": say it, then really pass it on.
    "contract_terminate": IntentAction.answer_and_escalate,
    "data_deletion": IntentAction.answer_and_escalate,
    "complaint": IntentAction.answer_and_escalate,
    # The hand-over request's own shipped text promises "a few minutes": the hand-over notice says the real wait.
    "human_handoff": IntentAction.escalate,
    "order_status": IntentAction.self_service,
    **{name: IntentAction.answer for name in (
        "greeting", "goodbye", "thanks", "new_connection", "internet_down", "slow_internet", "mobile_no_signal",
        "tv_not_working", "billing_question", "payment_methods", "balance_check", "tariff_change", "tariff_info",
        "roaming", "contract_info", "personal_data_change", "office_hours", "router_setup")},
}
SELF_SERVICE_INTENTS = frozenset({"order_status"})
"""Intents the bot can look up an answer for itself (contract status comes later)."""


@dataclass(frozen=True, slots=True)
class ActionTable:
    """The admins' declarations, read once per ingest batch: resolves intents without a query each."""

    declared: Mapping[str, IntentAction]

    def action_for(self, intent: str, has_answer: bool) -> IntentAction:
        """The declared action, else the shipped default, else `answer` when there is an answer text."""
        found = self.declared.get(intent) or DEFAULT_ACTIONS.get(intent)
        if found is not None:
            return found
        return IntentAction.answer if has_answer else IntentAction.escalate

    def is_declared(self, intent: str) -> bool:
        return intent in self.declared


async def declared(session: AsyncSession) -> list[tuple[str, str]]:
    """(intent, action) of every admin's declaration."""
    return await repository.action_rules(session)


async def action_table(session: AsyncSession) -> ActionTable:
    """Every admin's declaration, in one query (the table has a row per intent at most)."""
    rows = await repository.action_rules(session)
    return ActionTable({intent: IntentAction(action) for intent, action in rows if action in _VALUES})


_VALUES = frozenset(a.value for a in IntentAction)


def parse_action(value: str) -> IntentAction:
    """The action named `value`; anything else is a 422 listing the ones there are."""
    if value not in _VALUES:
        raise ValidationFailedError(f"unknown action {value!r}: use one of {', '.join(sorted(_VALUES))}",
                                    field="action", allowed=sorted(_VALUES))
    return IntentAction(value)


def check_action(intent: str, action: IntentAction, answers: Mapping[str, str]) -> None:
    """Reject what the bot could not do: answer without an answer text, look up what it cannot look up."""
    if action == IntentAction.answer and not any(text.strip() for text in answers.values()):
        raise ValidationFailedError(
            f"intent {intent!r} has no answer text, so the bot cannot answer it: add an answer first, or choose "
            "escalate", field="action", intent=intent)
    if action == IntentAction.self_service and intent not in SELF_SERVICE_INTENTS:
        raise ValidationFailedError(
            f"the bot has no self-service lookup for {intent!r}; self-service works for "
            f"{', '.join(sorted(SELF_SERVICE_INTENTS))}", field="action", intent=intent)


async def answers_of(session: AsyncSession, intent: str) -> dict[str, str]:
    row = await repository.intent_by_name(session, intent)
    return {r.language: r.text for r in row.responses} if row is not None else {}


async def effective_actions(session: AsyncSession, intents: list[str]) -> dict[str, tuple[IntentAction, bool]]:
    """(action, declared by an admin) of each of `intents`, as ingest resolves them."""
    table = await action_table(session)
    answered = {name for name, texts in (await service.responses(session)).items() if texts}
    return {name: (table.action_for(name, name in answered), table.is_declared(name)) for name in intents}


async def set_action(session: AsyncSession, intent: str, value: str, actor: User | None) -> IntentAction:
    """Declare what the bot does with `intent` from the next message on.

    Raises:
        ValidationFailedError: not an intent name, an unknown action, or one the intent cannot have.
    """
    service.check_intent_name(intent)
    action = parse_action(value)
    check_action(intent, action, await answers_of(session, intent))
    rule = await repository.action_rule(session, intent)
    old = rule.action if rule is not None else None
    if rule is None:
        rule = IntentActionRule(intent=intent, action=action.value, updated_at=utcnow())
        session.add(rule)
    else:
        rule.action, rule.updated_at = action.value, utcnow()
    await session.flush()
    audit.record(session, actor, "nlu.intent.action", "intent", intent, old=old, new=action.value)
    return action
