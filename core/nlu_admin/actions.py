"""What the bot does with each intent: declared by admins, with shipped defaults for the shipped intents that do
not simply answer.

An intent nobody declared and the defaults do not name (an FAQ, an admin's new intent, one only a Rasa model knows)
is answered when it has an answer text and escalated when it has none, so teaching the bot a new FAQ stays one step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core import settings_cache
from core.audit import service as audit
from core.decision.policy import CONTRACT_INTENT, HANDOFF_INTENT, ORDER_INTENT, IntentAction
from core.errors import ValidationFailedError
from core.nlu_admin import repository, service
from core.nlu_admin.models import IntentActionRule
from core.users.models import User
from nlu.protocol import OUT_OF_SCOPE

DEFAULT_ACTIONS: dict[str, IntentAction] = {
    # The shipped answers of these say "I am passing this to a specialist": say it, then really pass it on.
    "contract_terminate": IntentAction.answer_and_escalate,
    "data_deletion": IntentAction.answer_and_escalate,
    "complaint": IntentAction.answer_and_escalate,
    # The hand-over request's own shipped text promises "a few minutes": the hand-over notice says the real wait.
    HANDOFF_INTENT: IntentAction.escalate,
    ORDER_INTENT: IntentAction.self_service,
    CONTRACT_INTENT: IntentAction.self_service,  # the contract's end date and tariff from its record
    # Near-domain questions the bot must not answer (nlu.protocol.OUT_OF_SCOPE): a person reads them.
    OUT_OF_SCOPE: IntentAction.escalate,
}
# What an intent may be declared beyond the rule for all: the hand-over request always reaches a person, and
# self-service exists only where the bot has a lookup (the order status, the customer's contract).
HANDOFF_ACTIONS = (IntentAction.escalate, IntentAction.answer_and_escalate)
SELF_SERVICE_INTENTS = (ORDER_INTENT, CONTRACT_INTENT)


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


async def action_table(session: AsyncSession) -> ActionTable:
    """Every admin's declaration, in one query (the table has a row per intent at most)."""
    rows = await repository.action_rules(session)
    return ActionTable({intent: IntentAction(action) for intent, action in rows if action in _VALUES})


_VALUES = frozenset(a.value for a in IntentAction)


def parse_action(value: str) -> IntentAction:
    """The action named `value` (the console's form sends a plain string); anything else is a 422 listing the ones
    there are."""
    if value not in _VALUES:
        raise ValidationFailedError(f"unknown action {value!r}: use one of {', '.join(sorted(_VALUES))}",
                                    field="action", allowed=sorted(_VALUES))
    return IntentAction(value)


def check_action(intent: str, action: IntentAction, has_answer: bool) -> None:
    """Reject what the bot could not do or must not do: answer without an answer text, look up what it cannot look
    up, keep a customer who asks for a person from reaching one."""
    if intent == HANDOFF_INTENT and action not in HANDOFF_ACTIONS:
        raise ValidationFailedError(
            f"intent {intent!r} is the customer asking for a person: it can only be "
            f"{' or '.join(a.value for a in HANDOFF_ACTIONS)}", field="action", intent=intent,
            allowed=[a.value for a in HANDOFF_ACTIONS])
    if action == IntentAction.answer and not has_answer:
        raise ValidationFailedError(
            f"intent {intent!r} has no answer text, so the bot cannot answer it: add an answer first, or choose "
            "escalate", field="action", intent=intent)
    if action == IntentAction.self_service and intent not in SELF_SERVICE_INTENTS:
        raise ValidationFailedError(
            f"the bot has no self-service lookup for {intent!r}; self-service works for "
            f"{', '.join(SELF_SERVICE_INTENTS)}",
            field="action", intent=intent)


async def effective_actions(session: AsyncSession, intents: Iterable[str] | None = None,
                            ) -> dict[str, tuple[IntentAction, bool]]:
    """(action, declared by an admin) of each of `intents`, as ingest resolves them; without `intents`: of every
    intent the bot knows (trained, shipped with a default or declared), by name."""
    table = await action_table(session)
    if intents is None:
        intents = sorted({*await service.intent_names(session), *DEFAULT_ACTIONS, *table.declared})
    answered = {name for name, texts in (await service.responses(session)).items() if texts}
    return {name: (table.action_for(name, name in answered), table.is_declared(name)) for name in intents}


async def set_action(session: AsyncSession, intent: str, action: IntentAction, actor: User | None) -> IntentAction:
    """Declare what the bot does with `intent` from the next message on.

    Raises:
        ValidationFailedError: not an intent name, or an action the intent cannot have.
    """
    service.check_intent_name(intent)
    has_answer = any(text.strip() for _, _, text in await repository.response_texts(session, intent))
    check_action(intent, action, has_answer)
    rule = await repository.action_rule(session, intent)
    old = rule.action if rule is not None else None
    if rule is None:
        session.add(IntentActionRule(intent=intent, action=action.value))
    else:
        rule.action = action.value
    await session.flush()
    settings_cache.changed(session, settings_cache.INTENT_ACTIONS)
    audit.record(session, actor, "nlu.intent.action", "intent", intent, old=old, new=action.value)
    return action
