"""Who is on a ticket's page (viewing, typing a reply or a note), and agents' typing passed on to the customer.

Nothing here touches the database: presence is ephemeral. A console page announces itself (`announce`); the
announcement goes on the live bus (`Topic.PRESENCE`, forwarded across instances by the Redis bridge) for the
other console users on that ticket. An agent typing a reply (never a note) is also shown to the customer: a
`Topic.TYPING` event for the web chat (its sockets may be held by any instance) and, where the channel has one,
the channel's own typing signal (Telegram's chat action) sent once, from the instance that heard the agent.
Both are throttled per ticket: at most one every `customer_typing_seconds`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import ValidationFailedError
from core.events import AgentPresence, Composer, EventBus, PresenceState, Topic, Typing

if TYPE_CHECKING:
    from core.tickets.models import Ticket
    from core.users.models import User

log = logging.getLogger(__name__)

# Telegram shows "typing…" for 5 s after each chat action; the web chat hides it 8 s after the last event.
CUSTOMER_TYPING_SECONDS = 4.0
STATES: frozenset[str] = frozenset({"viewing", "typing", "left"})
COMPOSERS: frozenset[str] = frozenset({"reply", "note"})
_MAX_TRACKED = 10_000

# (channel kind, recipient) -> the channel's typing signal; absent for channels without one.
TypingSender = Callable[[str, str], Awaitable[None]]


def parse(state: str, what: str) -> tuple[PresenceState, Composer | None]:
    """A page's announcement as typed values; ValidationFailedError (422) names what is wrong."""
    if state not in STATES:
        raise ValidationFailedError(f"state must be one of {', '.join(sorted(STATES))}, not {state[:40]!r}")
    if state != "typing":
        return cast(PresenceState, state), None
    if what not in COMPOSERS:
        raise ValidationFailedError(f"what must be reply or note when typing, not {what[:40]!r}")
    return "typing", cast(Composer, what)


class PresenceRelay:
    """Publishes console presence and passes agents' typing on to customers, throttled per ticket."""

    def __init__(self, bus: EventBus, clock: Clock = SYSTEM_CLOCK, send_typing: TypingSender | None = None,
                 customer_typing_seconds: float = CUSTOMER_TYPING_SECONDS) -> None:
        self.bus = bus
        self.clock = clock
        self.send_typing = send_typing
        self.customer_typing_seconds = customer_typing_seconds
        self._customer_told: dict[int, float] = {}  # ticket id -> when its customer was last shown typing
        self.customer_typing_sent = 0

    async def announce(self, ticket: Ticket, user: User, state: PresenceState, what: Composer | None = None) -> bool:
        """Tell the ticket's other viewers; an agent typing a reply is shown to the customer too.

        Returns whether the customer was told (False: a note, throttled, or a ticket nobody can answer).
        """
        composer = what if state == "typing" else None
        self.bus.publish(Topic.PRESENCE, AgentPresence(ticket_id=ticket.id, user_id=user.id, name=user.name,
                                                       state=state, what=composer))
        if state != "typing" or composer != "reply" or not self._answerable(ticket):
            return False
        now = self.clock.monotonic()
        last = self._customer_told.get(ticket.id)
        if last is not None and now - last < self.customer_typing_seconds:
            return False
        self._remember(ticket.id, now)
        self.customer_typing_sent += 1
        if ticket.thread_key:
            self.bus.publish(Topic.TYPING, Typing(channel=ticket.channel, direction="outbound",
                                                  thread_key=ticket.thread_key, active=True, author=user.shown_name))
        if self.send_typing is not None and ticket.identity is not None:
            try:
                await self.send_typing(ticket.channel, ticket.identity.external_id)
            except Exception as exc:  # a typing signal is a courtesy: it never fails the agent's page
                log.info("typing signal not sent", extra={"channel": ticket.channel, "ticket_id": ticket.id,
                                                          "error": f"{type(exc).__name__}: {exc}"[:200]})
        return True

    @staticmethod
    def _answerable(ticket: Ticket) -> bool:
        return ticket.status.value != "closed" and ticket.merged_into_id is None and ticket.identity is not None

    def _remember(self, ticket_id: int, now: float) -> None:
        if len(self._customer_told) >= _MAX_TRACKED:
            # Only recent entries matter to the throttle; older ones are dropped in one sweep.
            horizon = now - self.customer_typing_seconds
            self._customer_told = {k: v for k, v in self._customer_told.items() if v >= horizon}
        self._customer_told[ticket_id] = now
