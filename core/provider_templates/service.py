"""Replying with a provider's approved template: which templates may be sent, their parameters checked and filled.

The templates are listed by the channel (WhatsApp: `GET /<WABA id>/message_templates`) and cached in
`provider_templates`; this module holds the rules and never calls the provider.
"""

from __future__ import annotations

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
PLACEHOLDER = re.compile(r"\{\{\s*(\d{1,2})\s*\}\}")
# WhatsApp refuses a parameter with a line break, a tab or more than four spaces in a row (error 132018).
BAD_PARAM = re.compile(r"[\n\r\t]| {5,}")


def render(body: str, params: Sequence[str]) -> str:
    """The body with {{n}} replaced by the n-th parameter (1-based)."""
    return PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(params)
                           else m.group(0), body)


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
    return await repository.list_for(session, channel, usable_only=True)


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
