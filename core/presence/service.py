"""Who is on a ticket's page (viewing, typing a reply or a note), and agents' typing passed on to the customer.

Nothing here touches the database: presence is ephemeral. A console page announces itself (`announce`); the
announcement goes on the live bus (`Topic.PRESENCE`, forwarded across instances by the Redis bridge) for the
other console users on that ticket. An agent typing a reply (never a note) is also shown to the customer: a
`Topic.TYPING` event for the web chat (its sockets may be held by any instance) and, where the channel has one,
the channel's own typing signal (Telegram's chat action) sent once, from the instance that heard the agent.
Both are throttled per ticket: at most one every `customer_typing_seconds`.

Presence itself is not stored; a beat reads only whether its ticket exists, or for a typed reply the few columns
showing the customer needs (`CustomerLine`). The channel's signal is a network call (up to seconds): `announce`
only says it is due; the caller sends it (`signal`) once its request is answered and its database session closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import NotFoundError, ValidationFailedError
from core.events import AgentPresence, Composer, EventBus, PresenceState, Topic, Typing
from core.presence import repository
from core.tickets.models import TicketStatus

if TYPE_CHECKING:
    from core.users.models import User

log = logging.getLogger(__name__)

# Telegram shows "typing…" for 5 s after each chat action; the web chat hides it 8 s after the last event.
CUSTOMER_TYPING_SECONDS = 4.0
STATES: frozenset[str] = frozenset({"viewing", "typing", "left"})
COMPOSERS: frozenset[str] = frozenset({"reply", "note"})
_MAX_TRACKED = 10_000

# (channel kind, recipient) -> the channel's typing signal; absent for channels without one.
TypingSender = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CustomerLine:
    """What showing a ticket's customer that an agent is typing needs."""

    ticket_id: int
    channel: str
    thread_key: str | None  # the web chat's session: its typing event goes to the sockets of that thread
    recipient: str | None  # the identity's external id (a Telegram chat): None, the customer cannot be reached
    answerable: bool  # not closed, not merged, someone to answer


@dataclass(frozen=True, slots=True)
class CustomerTyping:
    """A channel typing signal due (`PresenceRelay.signal` sends it)."""

    ticket_id: int
    channel: str
    recipient: str


def parse(state: str, what: str) -> tuple[PresenceState, Composer | None]:
    """A page's announcement as typed values; ValidationFailedError (422) names what is wrong."""
    if state not in STATES:
        raise ValidationFailedError(f"state must be one of {', '.join(sorted(STATES))}, not {state[:40]!r}")
    if state != "typing":
        return cast(PresenceState, state), None
    if what not in COMPOSERS:
        raise ValidationFailedError(f"what must be reply or note when typing, not {what[:40]!r}")
    return "typing", cast(Composer, what)


async def ensure_ticket(session: AsyncSession, ticket_id: int) -> None:
    """NotFoundError (404) when there is no such ticket: all a viewing, leaving or note-typing beat needs."""
    if not await repository.ticket_exists(session, ticket_id):
        raise NotFoundError(f"ticket {ticket_id} not found")


async def customer_line(session: AsyncSession, ticket_id: int) -> CustomerLine:
    """The ticket's customer as a typed reply reaches them; NotFoundError (404) when there is no such ticket."""
    row = await repository.customer_line(session, ticket_id)
    if row is None:
        raise NotFoundError(f"ticket {ticket_id} not found")
    status, merged_into_id, channel, thread_key, recipient = row
    return CustomerLine(ticket_id=ticket_id, channel=channel, thread_key=thread_key, recipient=recipient,
                        answerable=status != TicketStatus.closed and merged_into_id is None and recipient is not None)


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

    def announce(self, ticket_id: int, user: User, state: PresenceState, what: Composer | None = None,
                 line: CustomerLine | None = None) -> CustomerTyping | None:
        """Tell the ticket's other viewers; an agent typing a reply is shown to the customer too (`line`: the
        ticket's customer, read for a typed reply).

        Returns the channel's typing signal now due (for `signal`, after the caller's request), or None: the
        customer was not told (a note, throttled, a ticket nobody can answer) or the web chat's event was enough.
        """
        composer = what if state == "typing" else None
        self.bus.publish(Topic.PRESENCE, AgentPresence(ticket_id=ticket_id, user_id=user.id, name=user.name,
                                                       state=state, what=composer))
        if composer != "reply" or line is None or not line.answerable:
            return None
        now = self.clock.monotonic()
        last = self._customer_told.get(ticket_id)
        if last is not None and now - last < self.customer_typing_seconds:
            return None
        self._remember(ticket_id, now)
        self.customer_typing_sent += 1
        if line.thread_key:
            self.bus.publish(Topic.TYPING, Typing(channel=line.channel, direction="outbound",
                                                  thread_key=line.thread_key, active=True, author=user.shown_name))
        if self.send_typing is None or line.recipient is None:
            return None
        return CustomerTyping(ticket_id=ticket_id, channel=line.channel, recipient=line.recipient)

    async def signal(self, typing: CustomerTyping) -> None:
        """Send a channel's typing signal; a failure is logged, never raised (a courtesy, not the agent's problem)."""
        if self.send_typing is None:
            return
        try:
            await self.send_typing(typing.channel, typing.recipient)
        except Exception as exc:
            log.info("typing signal not sent", extra={"channel": typing.channel, "ticket_id": typing.ticket_id,
                                                      "error": f"{type(exc).__name__}: {exc}"[:200]})

    def _remember(self, ticket_id: int, now: float) -> None:
        if len(self._customer_told) >= _MAX_TRACKED:
            # Only recent entries matter to the throttle; older ones are dropped in one sweep.
            horizon = now - self.customer_typing_seconds
            self._customer_told = {k: v for k, v in self._customer_told.items() if v >= horizon}
        self._customer_told[ticket_id] = now
