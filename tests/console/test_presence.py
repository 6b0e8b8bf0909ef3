"""Who else is on a ticket (issue 11, scope 7): a page's presence announcements reach the other signed-in console
users on that ticket over the live stream, nobody else; bad announcements get a 4xx with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events import Topic
from core.presence.service import PresenceRelay
from core.users.models import Role
from tests.conftest import REST_HEADERS, make_user, rest_message
from tests.console.conftest import People, csrf_of, login
from tests.support.server import LiveServer
from tests.support.waiting import wait_for


class Stream:
    """A console page's event stream (/console/events), read in the background."""

    def __init__(self, client: httpx.AsyncClient, query: str) -> None:
        self.client, self.query = client, query
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.status: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.client.stream("GET", f"/console/events{self.query}",
                                      timeout=httpx.Timeout(30, read=None)) as response:
            self.status = response.status_code
            kind = "message"
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line[6:])))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.events if k == kind]

    @classmethod
    @asynccontextmanager
    async def open(cls, client: httpx.AsyncClient, query: str = "") -> AsyncIterator[Stream]:
        stream = cls(client, query)
        stream._task = asyncio.create_task(stream._run())
        try:
            await wait_for(lambda: stream.status == 401 or stream.of("hello"), "the stream's hello")
            yield stream
        finally:
            stream._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await stream._task


@asynccontextmanager
async def browser_session(server: LiveServer, email: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in console user against the served app, and the CSRF token of their pages."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await login(client, email)).status_code == 303
        yield client, csrf_of((await client.get("/console/inbox")).text)


async def new_ticket(server: LiveServer, ext: str) -> tuple[int, str]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/channels/rest/messages", headers=REST_HEADERS,
                            json=rest_message(ext, "My TV is black", sender=f"s-{ext}"))
    number = str(r.json()["ticket_number"])
    return int(number[2:]), number


async def test_other_viewers_and_typists_of_the_ticket_are_announced_to_signed_in_users_only(
        live_server: LiveServer, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id, number = await new_ticket(live_server, "p-1")
    other_id, _ = await new_ticket(live_server, "p-2")
    anna, _ = await make_user(sessionmaker, Role.agent, "anna@test.example", "technical")
    async with browser_session(live_server, "agent@test.example") as (me, _), \
            browser_session(live_server, "anna@test.example") as (anna_client, anna_csrf), \
            Stream.open(me, f"?ticket={ticket_id}") as mine, Stream.open(me) as inbox_page, \
            Stream.open(anna_client, f"?ticket={ticket_id}") as annas_own:
        url = f"/console/tickets/{number}/presence"
        for form in ({"state": "viewing"}, {"state": "typing", "what": "reply"},
                     {"state": "typing", "what": "note"}, {"state": "left"}):
            r = await anna_client.post(url, data={"csrf_token": anna_csrf, **form})
            assert r.status_code == 204, r.text
        r = await anna_client.post(f"/console/tickets/T-{other_id:06d}/presence",
                                   data={"csrf_token": anna_csrf, "state": "viewing"})
        assert r.status_code == 204
        await wait_for(lambda: len(mine.of("presence")) >= 4, "anna's presence on my ticket page")
        assert [(p["name"], p["state"], p["what"]) for p in mine.of("presence")] == [
            ("anna", "viewing", None), ("anna", "typing", "reply"), ("anna", "typing", "note"), ("anna", "left", None)]
        assert {p["ticket_id"] for p in mine.of("presence")} == {ticket_id} and mine.of("presence")[0][
            "user_id"] == anna.id
        # A page that watches no ticket, and anna's own page, hear nothing of it.
        assert inbox_page.of("presence") == [] and annas_own.of("presence") == []

    # Presence is for signed-in console users only: no stream without a session.
    async with httpx.AsyncClient(base_url=live_server.url) as stranger:
        r = await stranger.get(f"/console/events?ticket={ticket_id}")
        assert r.status_code == 401


async def test_bad_presence_announcements_get_a_reason(live_server: LiveServer, people: People) -> None:
    _, number = await new_ticket(live_server, "p-3")
    bus = live_server.app.state.switchboard.bus
    async with browser_session(live_server, "agent@test.example") as (me, csrf), \
            bus.subscribe(Topic.PRESENCE) as events:
        url = f"/console/tickets/{number}/presence"
        r = await me.post(url, data={"csrf_token": csrf, "state": "dancing"})
        assert r.status_code == 422 and "state must be one of left, typing, viewing" in r.json()["error"]["message"]
        r = await me.post(url, data={"csrf_token": csrf, "state": "typing", "what": "email"})
        assert r.status_code == 422 and "what must be reply or note" in r.text
        r = await me.post("/console/tickets/T-999999/presence", data={"csrf_token": csrf, "state": "viewing"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await me.post("/console/tickets/nonsense/presence", data={"csrf_token": csrf, "state": "viewing"})
        assert r.status_code == 404
        r = await me.post(url, data={"csrf_token": "forged", "state": "viewing"})
        assert r.status_code == 403
        assert events.empty()  # nothing announced for any of them
    async with httpx.AsyncClient(base_url=live_server.url) as stranger:
        r = await stranger.post(url, data={"state": "viewing"})
        assert r.status_code in (401, 403)


async def test_a_typed_reply_is_answered_before_the_channels_typing_signal_goes_out(
        live_server: LiveServer, people: People) -> None:
    """The signal (Telegram: a network call of up to 5 s) never holds the beat's answer nor its database session."""
    _, number = await new_ticket(live_server, "p-4")
    switchboard = live_server.app.state.switchboard
    release, sent = asyncio.Event(), []

    async def slow_signal(channel: str, recipient: str) -> None:
        sent.append((channel, recipient, "started"))
        await release.wait()
        sent.append((channel, recipient, "done"))

    switchboard.presence = PresenceRelay(switchboard.bus, switchboard.clock, slow_signal)
    async with browser_session(live_server, "agent@test.example") as (me, csrf):
        url = f"/console/tickets/{number}/presence"
        r = await me.post(url, data={"csrf_token": csrf, "state": "typing", "what": "reply"})
        assert r.status_code == 204  # answered while the signal is still on its way
        await wait_for(lambda: sent == [("rest", "s-p-4", "started")], "the signal sent after the answer")
        # The answer's session is closed: the next beat is served while that signal still waits.
        r = await me.post(url, data={"csrf_token": csrf, "state": "viewing"})
        assert r.status_code == 204
        release.set()
        await wait_for(lambda: len(sent) == 2, "the signal finished")
        # A note, or a ticket nobody can answer, sends no signal at all.
        r = await me.post(url, data={"csrf_token": csrf, "state": "typing", "what": "note"})
        assert r.status_code == 204 and len(sent) == 2
