"""Ticket collision errors: someone else holds the ticket (409, naming the holder, so a page can ask first)."""

from __future__ import annotations

from core.errors import ConflictError


class TicketHeldError(ConflictError):
    """Taking the ticket would take it from the person who holds it: that needs an explicit take-over."""

    code = "ticket_held"

    def __init__(self, number: str, holder_id: int, holder_name: str) -> None:
        super().__init__(
            f"ticket {number} is already taken by {holder_name}; take it over explicitly (take_over) to continue",
            assignee_id=holder_id, assignee_name=holder_name)
        self.holder_id = holder_id
        self.holder_name = holder_name


class NotAssigneeError(ConflictError):
    """A reply on a ticket someone else holds: the caller asked to be warned first."""

    code = "not_assignee"

    def __init__(self, number: str, holder_id: int, holder_name: str) -> None:
        super().__init__(f"ticket {number} is held by {holder_name}; confirm to reply anyway",
                         assignee_id=holder_id, assignee_name=holder_name)
        self.holder_id = holder_id
        self.holder_name = holder_name
