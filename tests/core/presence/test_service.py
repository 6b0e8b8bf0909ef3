"""The presence relay: console presence on the bus, agents' typing passed on to the customer, throttled per ticket,
never for internal notes (no database: presence is ephemeral); and the one-row reads a beat needs."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.errors import NotFoundError, ValidationFailedError
from core.events import EventBus, Topic
from core.presence import service as presence
from core.presence.service import CustomerLine, CustomerTyping, PresenceRelay, parse
from core.tickets import service as tickets
from core.tickets.models import TicketStatus
from core.users.models import Role, User
from tests.conftest import REST_HEADERS, rest_message


def line(ticket_id: int = 7, channel: str = "webchat", thread: str = "visitor-1", answerable: bool = True,
         recipient: str | None = None) -> CustomerLine:
    return CustomerLine(ticket_id=ticket_id, channel=channel, thread_key=thread, recipient=recipient or thread,
                        answerable=answerable)


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
        assert relay.announce(7, ANNA, "viewing") is None
        assert relay.announce(7, ANNA, "typing", "note", line()) is None
        assert relay.announce(7, ANNA, "left") is None
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
        due = [relay.announce(7, ANNA, "typing", "reply", line())]
        clock.advance(3.9)
        assert relay.announce(7, ANNA, "typing", "reply", line()) is None  # within 4 s: not again
        due.append(relay.announce(8, ANNA, "typing", "reply", line(8, "telegram", "555")))  # other ticket
        clock.advance(0.1)
        due.append(relay.announce(7, ANNA, "typing", "reply", line()))
        events = drained(queue)
    assert [p for _, p in events] == [
        {"channel": "webchat", "direction": "outbound", "thread_key": "visitor-1", "active": True, "author": "Anna"},
        {"channel": "telegram", "direction": "outbound", "thread_key": "555", "active": True, "author": "Anna"},
        {"channel": "webchat", "direction": "outbound", "thread_key": "visitor-1", "active": True, "author": "Anna"},
    ]
    assert due == [CustomerTyping(7, "webchat", "visitor-1"), CustomerTyping(8, "telegram", "555"),
                   CustomerTyping(7, "webchat", "visitor-1")]
    # Announcing sends nothing over the network: the caller sends the signals once its request is answered.
    assert signals.sent == []
    for typing in due:
        assert typing is not None
        await relay.signal(typing)
    assert signals.sent == [("webchat", "visitor-1"), ("telegram", "555"), ("webchat", "visitor-1")]
    assert relay.customer_typing_sent == 3


async def test_unanswerable_tickets_show_the_customer_nothing_and_a_failing_signal_is_not_an_error() -> None:
    bus, clock = EventBus(), ManualClock()
    relay = PresenceRelay(bus, clock, Signals())
    async with bus.subscribe(Topic.TYPING) as queue:
        assert relay.announce(9, ANNA, "typing", "reply", line(9, answerable=False)) is None
        assert relay.announce(9, ANNA, "typing", "reply", None) is None
        assert drained(queue) == []
    assert PresenceRelay(bus, clock).announce(7, ANNA, "typing", "reply", line()) is None  # no channel signals
    failing = Signals(fail=True)
    relay = PresenceRelay(bus, clock, failing)
    typing = relay.announce(7, ANNA, "typing", "reply", line())
    assert typing is not None
    await relay.signal(typing)  # logged, not raised
    assert failing.sent == [("webchat", "visitor-1")]


def test_announcements_are_parsed_with_reasons() -> None:
    assert parse("viewing", "reply") == ("viewing", None)
    assert parse("typing", "note") == ("typing", "note")
    with pytest.raises(ValidationFailedError, match="state must be one of left, typing, viewing"):
        parse("dancing", "")
    with pytest.raises(ValidationFailedError, match="what must be reply or note"):
        parse("typing", "email")


async def test_a_beat_reads_whether_the_ticket_exists_and_its_customers_line(
        app_client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("m-1", "my TV is black, call an operator", sender="cust-555"))
    ticket_id = tickets.ticket_id_from_ref(r.json()["ticket_number"])
    async with sessionmaker() as session:
        await presence.ensure_ticket(session, ticket_id)
        with pytest.raises(NotFoundError):
            await presence.ensure_ticket(session, ticket_id + 1000)
        with pytest.raises(NotFoundError):
            await presence.customer_line(session, ticket_id + 1000)
        got = await presence.customer_line(session, ticket_id)
    assert (got.ticket_id, got.channel, got.recipient, got.answerable) == (ticket_id, "rest", "cust-555", True)
    async with sessionmaker() as session, session.begin():
        ticket = await tickets.get(session, ticket_id, lock=True)
        ticket.status = TicketStatus.closed
    async with sessionmaker() as session:
        assert (await presence.customer_line(session, ticket_id)).answerable is False
