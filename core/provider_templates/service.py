"""Replying with a provider's approved template: which templates may be sent, their parameters checked and filled.

The templates are listed by the channel (WhatsApp: `GET /<WABA id>/message_templates`) and cached in
`provider_templates`; this module holds the rules and never calls the provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.provider_templates import repository
from core.provider_templates.models import ProviderTemplate
from core.tickets import service as ticket_service
from core.tickets.models import Message, Ticket
from core.users.models import User

TEMPLATE_CHANNELS = frozenset({"whatsapp"})
MAX_PARAM = 1024  # WhatsApp's body is at most 1,024 characters filled
MAX_BODY = 1024
MAX_PARAMS = 100  # TemplateReplyCreate takes at most 100 parameters
# The one placeholder grammar: `{{ anything }}`; a parameter is one whose inside is ASCII digits ("²" and "١" are
# digits to str.isdigit, not to int()).
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NUMBER = re.compile(r"[0-9]{1,3}")
# WhatsApp refuses a parameter with a line break, a tab or more than four spaces in a row (error 132018).
BAD_PARAM = re.compile(r"[\n\r\t]| {5,}")


def _number(inside: str) -> int | None:
    return int(inside) if NUMBER.fullmatch(inside) else None


def render(body: str, params: Sequence[str]) -> str:
    """The body with {{n}} replaced by the n-th parameter (1-based)."""

    def fill(match: re.Match[str]) -> str:
        number = _number(match.group(1))
        return params[number - 1] if number is not None and 0 < number <= len(params) else match.group(0)

    return PLACEHOLDER.sub(fill, body)


def _unsupported_reason(components: list[Any], body: str) -> tuple[str | None, int]:
    """Why a template cannot be filled from here (None when it can), and its number of body parameters."""
    reason = None
    for component in components:
        if not isinstance(component, dict):
            continue
        kind, text = str(component.get("type", "")).upper(), component.get("text")
        if kind == "HEADER" and (str(component.get("format", "TEXT")).upper() != "TEXT" or
                                 (isinstance(text, str) and "{{" in text)):
            reason = reason or "its header takes a parameter or a file"
        elif kind == "BUTTONS" and "{{" in json.dumps(component.get("buttons", []), ensure_ascii=False):
            reason = reason or "a button takes a parameter"
    found = [_number(inside) for inside in PLACEHOLDER.findall(body)]
    numbers = sorted({n for n in found if n is not None})
    if any(n is None for n in found):
        reason = reason or "its parameters are named"
    elif numbers != list(range(1, len(numbers) + 1)):
        reason = reason or "its parameters are not numbered 1 to n"
    elif len(numbers) > MAX_PARAMS:
        reason = reason or f"it takes more than {MAX_PARAMS} parameters"
    if not body:
        reason = reason or "it has no body text"
    elif len(body) > MAX_BODY:
        reason = reason or f"its body is over {MAX_BODY} characters"
    return reason, len(numbers)


def template_row(item: Any) -> dict[str, Any] | None:
    """One item of a provider's template list (WhatsApp's `message_templates`) as a `provider_templates` row; None
    for an item without a name, a language and a status (nothing to key it by). Never raises: a template whose
    header or buttons take parameters, whose parameters are named or not numbered 1..n, or that cannot be read is
    kept as not supported, with the reason."""
    if not isinstance(item, dict):
        return None
    name, language, status = item.get("name"), item.get("language"), item.get("status")
    if not (isinstance(name, str) and 0 < len(name) <= 512 and isinstance(language, str) and 0 < len(language) <= 16
            and isinstance(status, str) and 0 < len(status) <= 32):
        return None
    category = item.get("category")
    given = item.get("components")
    components: list[Any] = given if isinstance(given, list) else []
    body = next((c["text"] for c in components if isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY"
                 and isinstance(c.get("text"), str)), "")
    try:
        reason, count = _unsupported_reason(components, body)
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a button list nested too deep to serialise
        reason, count = f"it could not be read: {type(exc).__name__}", 0
    return {"name": name, "language": language, "status": status.upper()[:32],
            "category": category[:32] if isinstance(category, str) else None, "body": body[:MAX_BODY * 4],
            "param_count": count, "supported": reason is None,
            "reason": reason and reason[:200]}


def check_params(template: ProviderTemplate, params: Sequence[str]) -> str:
    """The filled body; ConflictError (409) for a template that cannot be sent, ValidationFailedError (422) for
    parameters that do not fit it."""
    label = f"{template.name} ({template.language})"
    if template.status != "APPROVED":
        raise ConflictError(f"template {label} is {template.status.lower()}: WhatsApp sends only approved "
                            "templates", status=template.status)
    if not template.supported:
        raise ConflictError(f"template {label} cannot be sent from here: {template.reason}")
    if len(params) != template.param_count:
        raise ValidationFailedError(f"template {label} takes {template.param_count} parameters, not {len(params)}")
    for number, value in enumerate(params, start=1):
        if not value.strip():
            raise ValidationFailedError(f"parameter {number} is empty")
        if len(value) > MAX_PARAM:
            raise ValidationFailedError(f"parameter {number} is over {MAX_PARAM} characters")
        if BAD_PARAM.search(value):
            raise ValidationFailedError(
                f"parameter {number} has a line break, a tab or more than four spaces in a row (WhatsApp refuses it)")
    text = render(template.body, params)
    if len(text) > MAX_BODY:
        raise ValidationFailedError(f"the filled template is {len(text)} characters; WhatsApp takes {MAX_BODY}")
    return text


async def usable(session: AsyncSession, channel: str) -> Sequence[ProviderTemplate]:
    """The templates an agent may send on `channel` (approved, fillable), by name."""
    return await repository.list_usable(session, channel)


async def reply(session: AsyncSession, ticket: Ticket, actor: User, name: str, language: str,
                params: Sequence[str]) -> Message:
    """An agent's reply as an approved template: checked here, sent by the channel through the outbox."""
    if ticket.channel not in TEMPLATE_CHANNELS:
        raise ConflictError(f"ticket {ticket.number} is on {ticket.channel}, which has no message templates")
    template = await repository.get(session, ticket.channel, name, language)
    if template is None:
        raise NotFoundError(f"no template {name!r} in {language!r}; refresh the list if it was just approved")
    text = check_params(template, params)
    payload: dict[str, Any] = {"name": template.name, "language": template.language, "params": list(params)}
    return await ticket_service.reply(session, ticket, actor, text, template=payload)
