"""The presence relay: console presence on the bus, agents' typing passed on to the customer, throttled per ticket,
never for internal notes (no database: presence is ephemeral)."""

from __future__ import annotations

import pytest

from core.clock import ManualClock
from core.customers.models import ChannelIdentity
from core.errors import ValidationFailedError
from core.events import EventBus, Topic
from core.presence.service import PresenceRelay, parse
from core.tickets.models import Ticket, TicketStatus
from core.users.models import Role, User


def ticket(ticket_id: int = 7, channel: str = "webchat", thread: str = "visitor-1",
           status: TicketStatus = TicketStatus.open) -> Ticket:
    t = Ticket(id=ticket_id, channel=channel, thread_key=thread, status=status, merged_into_id=None)
    t.identity = ChannelIdentity(channel=channel, external_id=thread)
    return t


ANNA = User(id=3, name="Anna Petrova", display_name=None, role=Role.agent)


class Signals:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    async def __call__(self, channel: str, recipient: str) -> None:
        self.sent.append((channel, recipient))
        if self.fail:
            raise ConnectionError("Telegram is down")


def drained(queue: object) -> list[tuple[str, dict[str, object]]]:
    items = []
    while not queue.empty():  # type: ignore[attr-defined]
        items.append(queue.get_nowait())  # type: ignore[attr-defined]
    return items


async def test_viewing_and_a_note_reach_the_console_only() -> None:
    bus, signals = EventBus(), Signals()
    relay = PresenceRelay(bus, ManualClock(), signals)
    async with bus.subscribe(Topic.PRESENCE, Topic.TYPING) as queue:
        assert await relay.announce(ticket(), ANNA, "viewing") is False
        assert await relay.announce(ticket(), ANNA, "typing", "note") is False
        assert await relay.announce(ticket(), ANNA, "left") is False
        events = drained(queue)
    assert events == [
        (Topic.PRESENCE, {"ticket_id": 7, "user_id": 3, "name": "Anna Petrova", "state": "viewing", "what": None}),
        (Topic.PRESENCE, {"ticket_id": 7, "user_id": 3, "name": "Anna Petrova", "state": "typing", "what": "note"}),
        (Topic.PRESENCE, {"ticket_id": 7, "user_id": 3, "name": "Anna Petrova", "state": "left", "what": None}),
    ]
    assert signals.sent == []  # an internal note never shows the customer anything


async def test_typing_a_reply_reaches_the_customer_with_the_display_name_throttled_per_ticket() -> None:
    bus, signals, clock = EventBus(), Signals(), ManualClock()
    relay = PresenceRelay(bus, clock, signals, customer_typing_seconds=4.0)
    async with bus.subscribe(Topic.TYPING) as queue:
        assert await relay.announce(ticket(), ANNA, "typing", "reply") is True
        clock.advance(3.9)
        assert await relay.announce(ticket(), ANNA, "typing", "reply") is False  # within 4 s: not again
        assert await relay.announce(ticket(8, "telegram", "555"), ANNA, "typing", "reply") is True  # other ticket
        clock.advance(0.1)
        assert await relay.announce(ticket(), ANNA, "typing", "reply") is True
        events = drained(queue)
    assert [p for _, p in events] == [
        {"channel": "webchat", "direction": "outbound", "thread_key": "visitor-1", "active": True, "author": "Anna"},
        {"channel": "telegram", "direction": "outbound", "thread_key": "555", "active": True, "author": "Anna"},
        {"channel": "webchat", "direction": "outbound", "thread_key": "visitor-1", "active": True, "author": "Anna"},
    ]
    assert signals.sent == [("webchat", "visitor-1"), ("telegram", "555"), ("webchat", "visitor-1")]
    assert relay.customer_typing_sent == 3


async def test_closed_or_merged_tickets_show_the_customer_nothing_and_a_failing_signal_is_not_an_error() -> None:
    bus, clock = EventBus(), ManualClock()
    relay = PresenceRelay(bus, clock, Signals())
    assert await relay.announce(ticket(status=TicketStatus.closed), ANNA, "typing", "reply") is False
    merged = ticket(9)
    merged.merged_into_id = 7
    assert await relay.announce(merged, ANNA, "typing", "reply") is False
    failing = Signals(fail=True)
    relay = PresenceRelay(bus, clock, failing)
    assert await relay.announce(ticket(), ANNA, "typing", "reply") is True
    assert failing.sent == [("webchat", "visitor-1")]


def test_announcements_are_parsed_with_reasons() -> None:
    assert parse("viewing", "reply") == ("viewing", None)
    assert parse("typing", "note") == ("typing", "note")
    with pytest.raises(ValidationFailedError, match="state must be one of left, typing, viewing"):
        parse("dancing", "")
    with pytest.raises(ValidationFailedError, match="what must be reply or note"):
        parse("typing", "email")
