"""The ticket status machine, as a table."""

from __future__ import annotations

import pytest

from core.errors import InvalidTransitionError
from core.tickets.models import Ticket, TicketStatus
from core.tickets.service import ALLOWED_TRANSITIONS, reopen_to_bot, transition

S = TicketStatus
ALLOWED = {
    (S.new, S.bot), (S.new, S.open), (S.new, S.pending), (S.new, S.resolved), (S.new, S.closed),
    (S.bot, S.open), (S.bot, S.pending), (S.bot, S.resolved), (S.bot, S.closed),
    (S.open, S.pending), (S.open, S.resolved), (S.open, S.closed),
    (S.pending, S.open), (S.pending, S.resolved), (S.pending, S.closed),
    (S.resolved, S.open), (S.resolved, S.closed),
}


def make(status: TicketStatus) -> Ticket:
    return Ticket(id=7, status=status, customer_id=1, channel="rest")


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_every_pair(old: TicketStatus, new: TicketStatus) -> None:
    ticket = make(old)
    if old == new:
        transition(ticket, new)
        assert ticket.status == old
    elif (old, new) in ALLOWED:
        transition(ticket, new)
        assert ticket.status == new
    else:
        with pytest.raises(InvalidTransitionError) as err:
            transition(ticket, new)
        assert err.value.details["allowed"] == sorted(s.value for s in ALLOWED_TRANSITIONS[old])
        assert ticket.status == old


def test_timestamps() -> None:
    ticket = make(S.open)
    transition(ticket, S.resolved)
    assert ticket.resolved_at is not None
    transition(ticket, S.open)
    assert ticket.resolved_at is None
    transition(ticket, S.closed)
    assert ticket.closed_at is not None and ticket.resolved_at is not None


def test_only_a_bot_resolved_ticket_goes_back_to_the_bot() -> None:
    ticket = make(S.bot)
    transition(ticket, S.resolved)
    with pytest.raises(InvalidTransitionError):
        reopen_to_bot(ticket)  # resolved by a person
    ticket.resolved_by_bot = True
    reopen_to_bot(ticket)
    assert ticket.status == S.bot and ticket.resolved_by_bot is False and ticket.resolved_at is None
    transition(ticket, S.resolved)
    ticket.resolved_by_bot = True
    transition(ticket, S.open)  # an agent reopening it: no longer counted as the bot's
    assert ticket.resolved_by_bot is False
