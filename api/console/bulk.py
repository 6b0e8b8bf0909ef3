"""Supervisors' bulk actions on the inbox: reassign, change the status of, or tag or untag the tickets ticked in the
list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from api.console.routes import redirect, safe_next
from api.console.security import ConsoleSupervisor, CsrfChecked
from api.deps import DbSession
from core.db.base import parse_id
from core.errors import DomainError, ValidationFailedError
from core.i18n import translator
from core.tags import service as tags
from core.tickets import service as ticket_service
from core.tickets.models import TicketStatus, format_ticket_number
from core.users import service as users

router = APIRouter(prefix="/console", include_in_schema=False)
MAX_BULK = 100  # one inbox page holds 50; a hand-made request with more is refused


@router.post("/tickets/bulk", dependencies=[CsrfChecked])
async def bulk(session: DbSession, user: ConsoleSupervisor, ticket: Annotated[list[str] | None, Form()] = None,
               action: Annotated[str, Form()] = "", user_id: Annotated[str, Form()] = "",
               status: Annotated[str, Form()] = "", tag: Annotated[str, Form()] = "",
               next: Annotated[str, Form()] = "") -> Response:
    """Each ticked ticket in its own savepoint: one that cannot change (a status it cannot go to) is named in the
    answer and the others change anyway."""
    _ = translator(user.language)
    refs = list(dict.fromkeys(ticket or []))
    if not refs:
        raise ValidationFailedError("ticket: tick at least one ticket")
    if len(refs) > MAX_BULK:
        raise ValidationFailedError(f"ticket: at most {MAX_BULK} tickets at once", given=len(refs))
    ids = [ticket_service.ticket_id_from_ref(ref) for ref in refs]  # a malformed number: 422 with the reason
    if action == "assign":
        assignee_id = parse_id(user_id) if user_id else None
        if user_id and assignee_id is None:
            raise ValidationFailedError(f"user_id must be a user id or empty for nobody, not {user_id[:40]!r}")
        assignee = await users.get(session, assignee_id) if assignee_id is not None else None
        if assignee is not None and assignee.id not in {u.id for u in await users.assignable_users(session)}:
            raise ValidationFailedError("user_id: tickets go to active agents and supervisors only")
    elif action == "status":
        if status not in TicketStatus.__members__:
            raise ValidationFailedError(f"status: unknown status {status[:40]!r}")
    elif action == "tag_add":
        # Resolved (or created) once, before any ticket changes: a bad name is a 422 with the reason.
        add = await tags.ensure_tag(session, tag, user)
    elif action == "tag_remove":
        untag = await tags.by_name(session, tags.clean_name(tag))  # a bad name: 422; an unknown tag: 404
    else:
        raise ValidationFailedError("action must be assign, status, tag_add or tag_remove")
    done, skipped = 0, []
    for ticket_id in ids:
        try:
            async with session.begin_nested():
                found = await ticket_service.get(session, ticket_id, lock=True)
                if action == "assign":
                    # The supervisor saw the list, not each holder: bulk reassignment takes over whoever holds it.
                    await ticket_service.assign(session, found, assignee, user)
                elif action == "tag_add":
                    await tags.add_to_ticket(session, found, add, user)
                elif action == "tag_remove":
                    await tags.remove_from_ticket(session, found, untag, user)
                else:
                    await ticket_service.change_status(session, found, TicketStatus(status), user)
            done += 1
        except DomainError as exc:
            skipped.append(f"{format_ticket_number(ticket_id)}: {exc.message}")
    text = _.ngettext("bulk.done", done)
    if skipped:
        text += " " + _("bulk.skipped", list="; ".join(skipped[:5]) + ("…" if len(skipped) > 5 else ""))
    return redirect(safe_next(next), text, "error" if skipped and not done else "info")
