"""Canned responses: CRUD for admins and safe variable substitution for agents.

Variables are substituted by a fixed whitelist with a regular expression, never by a template engine: an
admin's text cannot reach Python objects, and the result is plain text that the console escapes on display.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.canned import repository
from core.canned.models import CannedResponse
from core.canned.schemas import CannedResponseCreate, CannedResponseUpdate
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.tickets import repository as ticket_repo
from core.tickets.models import Ticket
from core.users.models import User

VARIABLES: tuple[str, ...] = ("customer_name", "ticket_number", "agent_name", "queue_name", "ticket_subject")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def variables_in(body: str) -> list[str]:
    return [m.group(1) for m in _VARIABLE.finditer(body)]


def validate_body(body: str) -> None:
    unknown = sorted({name for name in variables_in(body) if name not in VARIABLES})
    if unknown:
        raise ValidationFailedError(f"unknown variables: {', '.join(unknown)}", unknown=unknown,
                                    allowed=list(VARIABLES))


def render(body: str, values: Mapping[str, str]) -> str:
    """Substitute {{name}} placeholders; unknown names stay as written, values are inserted verbatim."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def values_for(ticket: Ticket, agent: User) -> dict[str, str]:
    """Variable values for a ticket loaded with its customer and team."""
    return {
        "customer_name": (ticket.customer.name or "").strip(),
        "ticket_number": ticket.number,
        "agent_name": agent.name,
        "queue_name": ticket.team.name if ticket.team else "",
        "ticket_subject": ticket.subject,
    }


def render_for(canned: CannedResponse, ticket: Ticket, agent: User) -> str:
    return render(canned.body, values_for(ticket, agent)).strip()


async def get(session: AsyncSession, canned_id: int) -> CannedResponse:
    canned = await repository.get(session, canned_id)
    if canned is None:
        raise NotFoundError(f"canned response {canned_id} not found")
    return canned


async def _apply(session: AsyncSession, canned: CannedResponse, body: CannedResponseCreate) -> None:
    validate_body(body.body)
    shortcut = body.shortcut or None
    if shortcut:
        other = await repository.get_by_shortcut(session, shortcut)
        if other is not None and other.id != canned.id:
            raise ConflictError(f"shortcut {shortcut!r} is already used by {other.title!r}")
    team = None
    if body.queue:
        team = await ticket_repo.get_team_by_slug(session, body.queue)
        if team is None:
            raise NotFoundError(f"queue {body.queue!r} not found")
    canned.title = body.title
    canned.body = body.body
    canned.shortcut = shortcut
    canned.language = body.language or None
    canned.team_id = team.id if team else None
    canned.team = team
    canned.updated_at = utcnow()


async def create(session: AsyncSession, body: CannedResponseCreate, actor: User) -> CannedResponse:
    canned = CannedResponse(created_by_id=actor.id, created_at=utcnow())
    await _apply(session, canned, body)
    session.add(canned)
    await session.flush()
    audit.record(session, actor, "canned.create", "canned_response", canned.id, title=canned.title)
    return canned


async def update(session: AsyncSession, canned_id: int, body: CannedResponseUpdate, actor: User) -> CannedResponse:
    canned = await get(session, canned_id)
    await _apply(session, canned, body)
    await session.flush()
    audit.record(session, actor, "canned.update", "canned_response", canned.id, title=canned.title)
    return canned


async def delete(session: AsyncSession, canned_id: int, actor: User) -> None:
    canned = await get(session, canned_id)
    await repository.delete(session, canned)
    audit.record(session, actor, "canned.delete", "canned_response", canned_id, title=canned.title)


async def list_all(session: AsyncSession) -> Sequence[CannedResponse]:
    return await repository.list_all(session)


async def list_for_ticket(session: AsyncSession, ticket: Ticket) -> Sequence[CannedResponse]:
    return await repository.list_for(session, language=ticket.language, team_id=ticket.team_id)


def matching(items: Sequence[CannedResponse], query: str | None) -> list[CannedResponse]:
    """What "/word" finds: responses whose shortcut starts with the word, then those whose title holds it."""
    word = (query or "").strip().lstrip("/").lower()
    if not word:
        return list(items)
    by_shortcut = [c for c in items if c.shortcut and c.shortcut.lower().startswith(word)]
    by_title = [c for c in items if c not in by_shortcut and word in c.title.lower()]
    return by_shortcut + by_title

