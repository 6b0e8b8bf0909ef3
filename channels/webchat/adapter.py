"""The web-chat channel: the WebSocket protocol of the widget, the live push hub, and the outbox sender.

Protocol (JSON text frames). The client opens /channels/webchat/ws and first sends
  {"type": "auth", "token"?: session token, "identifier"?, "identifier_hash"?, "name"?, "email"?,
   "lang"?: "ru"|"en", "last_seen_id"?: int, "page"?: host + path, "tz"?: IANA zone}
and gets {"type": "ready", "visitor_id", "session_token"?, "online", "notice", "lang"}, then
{"type": "history", "messages": [...], "complete", "cursor"} with what it has not seen. Afterwards:
  client: {"type": "message", "client_id", "text"} | {"type": "quick_reply", "client_id", "payload", "title"}
          | {"type": "typing", "active"} | {"type": "history", "after"} | {"type": "ping"}
  server: {"type": "ack", "client_id", "id", "ticket", "duplicate"} | {"type": "message", ...}
          | {"type": "typing", "active", "author"} | {"type": "error", "code", "message"} | {"type": "pong"}
          | {"type": "sync", "cursor"}: the visitor has been sent every message up to this id (its
            `last_seen_id` after a reconnect; live pushes alone never prove that, they may skip one)

Delivery: the client id is the idempotency key (`<visitor>:<client id>`), so a message resent after a
reconnect is acked with the id it already has. Outbound messages are pushed as soon as the "messages" event is
published after the commit, and again by the outbox through `send` (each socket skips ids it has already
pushed); a visitor without an open socket finds them in the history later, so `send` always succeeds.

Catch-up: live events from other instances travel through Redis, which keeps nothing while it or this
instance's subscription is down. Whenever live events may have been missed (`core.events.RESYNC_TOPIC`: the
bridge reconnected, or it is down and the database changed), one query reads the web-chat messages after the
lowest cursor of the open sockets and pushes each socket what it has not been sent, then a "sync" frame.
The same pass runs every `catch_up_seconds` anyway: an event can also be lost where nobody can tell (an instance
that crashed with events it could not publish yet, a subscriber queue that overflowed), and then a reply waits
at most that long instead of until the next reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from channels.base import ChannelContext, ChannelHealth
from channels.webchat import repository, tokens
from channels.webchat.settings import WebchatChannelSettings
from core import i18n
from core.auth.ratelimit import KeyedBuckets, TokenBucket
from core.csat.service import is_survey, is_survey_payload, survey_score
from core.db.base import utcnow
from core.db.outage import is_database_outage
from core.events import RESYNC_TOPIC, Topic, Typing
from core.ingest.schemas import InboundMessage, SenderInfo, unstorable_reason
from core.outbox.schemas import OutboundEnvelope
from core.tickets.models import Message
from core.timezones import known_zone

log = logging.getLogger(__name__)

CHANNEL = "webchat"
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CLOSE_AUTH_FAILED = 4401
CLOSE_IDENTITY_INVALID = 4403
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_POLICY = 1008
CLOSE_TOO_MANY_CONNECTIONS = 4429  # like HTTP 429: the widget waits retry_after, then reconnects
CLOSE_TRY_AGAIN = 1013  # RFC 6455 "try again later": the database is down
UNAVAILABLE = "the chat cannot reach its database right now; try again in a few seconds"
_AVAILABILITY_TTL = 30.0


class FrameError(Exception):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def attachment_summaries(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Name and size of each file; the visitor cannot fetch stored files (agent-only), only public URLs."""
    summaries = []
    for item in items:
        summary: dict[str, Any] = {"filename": str(item.get("filename") or "file"), "size": item.get("size")}
        url = item.get("url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            summary["url"] = url
        summaries.append(summary)
    return summaries


# A page as the widget sends it: a host (with an optional port), then a path. A scheme ("javascript:",
# "data:") is not a host, and whitespace has no place in either.
_PAGE = re.compile(r"[^\s/:?#]+(?::\d{1,5})?(?:/\S*)?")


def visitor_page(value: Any) -> str | None:
    """The page a visitor opened the chat on (host and path), or None when it is missing or not one.

    A query string or fragment is cut off (they may carry personal data, whatever the client sent); anything not
    printable, longer than 200 characters or not shaped like host/path is ignored, never a reason to refuse sign-in.
    """
    if not isinstance(value, str):
        return None
    page = re.split(r"[?#]", value, maxsplit=1)[0]
    if not page or len(page) > 200 or not page.isprintable() or not _PAGE.fullmatch(page):
        return None
    return page


def visitor_zone(value: Any) -> str | None:
    """The browser's IANA time zone, or None when it is missing or not a zone this machine knows."""
    # "localtime" names the server's own zone, not the visitor's.
    if not isinstance(value, str) or not 0 < len(value) <= 64 or value == "localtime":
        return None
    try:
        return known_zone(value)
    except ValueError:
        return None


def widget_frame(message_id: int, author: str, text: str, created_at: datetime | str | None,
                 attachments: list[dict[str, Any]] | None, quick_replies: list[dict[str, Any]] | None,
                 client_id: str | None = None, author_name: str | None = None) -> dict[str, Any]:
    """One message as the widget shows it: the one shape for history, live pushes and deliveries."""
    result: dict[str, Any] = {
        "type": "message", "id": message_id, "author": author, "text": text,
        "created_at": created_at.isoformat() if isinstance(created_at, datetime) else created_at,
    }
    if client_id:
        result["client_id"] = client_id
    if author_name and author == "agent":
        result["author_name"] = author_name
    if attachments:
        result["attachments"] = attachment_summaries(attachments)
    if quick_replies:
        result["quick_replies"] = [{"title": q["title"], "payload": q["payload"]} for q in quick_replies]
        if is_survey([str(q["payload"]) for q in quick_replies]):
            result["csat"] = True  # a satisfaction survey: the widget shows five stars instead of buttons
    return result


def message_frame(message: Message, payload: dict[str, Any] | None) -> dict[str, Any]:
    """A stored message (and its outbox payload, for the quick replies)."""
    return widget_frame(message.id, message.author_kind.value, message.text, message.created_at,
                        message.attachments, (payload or {}).get("quick_replies"),
                        (message.extra or {}).get("client_id"), (payload or {}).get("author_name"))


class Connection:
    """One open socket of one visitor."""

    __slots__ = ("cursor", "frames", "lang", "lock", "messages", "pushed", "rescan_from", "sender", "visitor_id",
                 "ws")

    def __init__(self, ws: WebSocket, sender: SenderInfo, lang: str, settings: WebchatChannelSettings,
                 clock: Callable[[], float]) -> None:
        self.ws, self.sender, self.visitor_id, self.lang = ws, sender, sender.external_id, lang
        self.lock = asyncio.Lock()
        self.pushed: set[int] = set()
        # Every message up to `cursor` has been sent to this socket. A catch-up reads again from the cursor
        # before the last one: a transaction that took a lower id may commit after one with a higher id.
        self.cursor = 0
        self.rescan_from = 0
        self.messages = TokenBucket(settings.message_burst, settings.messages_per_second, clock)
        self.frames = TokenBucket(settings.frame_burst, settings.frames_per_second, clock)

    async def push(self, frame: dict[str, Any]) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        data = json.dumps(frame, ensure_ascii=False)
        async with self.lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.ws.send_text(data)

    async def push_message(self, frame: dict[str, Any]) -> None:
        message_id = int(frame["id"])
        if message_id in self.pushed:
            return
        self.remember(message_id)
        await self.push(frame)

    def remember(self, message_id: int) -> None:
        if len(self.pushed) > 2000:
            self.pushed.clear()  # old ids; the widget also skips ids it shows already
        self.pushed.add(message_id)


class WebchatChannel:
    """Holds the open sockets by visitor, serves the widget protocol, delivers outbound messages."""

    kind: ClassVar[str] = CHANNEL

    def __init__(self, settings: WebchatChannelSettings, ctx: ChannelContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.health = ChannelHealth()
        self._sockets: dict[str, set[Connection]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._availability: tuple[float, bool, str | None, str] | None = None
        # Sockets opened per client address: in memory, per process (each worker counts its own).
        self._connections = KeyedBuckets(settings.connection_burst, settings.connections_per_second,
                                         ctx.clock.monotonic)
        self.caught_up = 0  # messages pushed by catch-ups (they would have been missed without)
        self.catch_ups = 0
        self._catch_up_lock = asyncio.Lock()
        self._periodic: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="webchat-live")
        self._periodic = asyncio.create_task(self._catch_up_periodically(), name="webchat-catch-up")
        self.health.ok()
        self.health.details["sockets"] = 0

    async def stop(self) -> None:
        for task in (self._listener, self._periodic):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._periodic = None
        for conns in list(self._sockets.values()):
            for conn in list(conns):
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1001)
        self.health.state = "stopped"

    @property
    def socket_count(self) -> int:
        return sum(len(c) for c in self._sockets.values())

    # -- outbound --------------------------------------------------------------------------------------

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        shown = widget_frame(envelope.message_id, envelope.author_kind, envelope.text, envelope.created_at,
                             envelope.attachments, [q.model_dump() for q in envelope.quick_replies],
                             author_name=envelope.author_name)
        for conn in list(self._sockets.get(envelope.recipient, ())):
            await conn.push_message(shown)
        # Not connected: the message waits in the history; delivered either way.
        return f"webchat-{envelope.message_id}"

    async def notify_typing(self, visitor_id: str, active: bool, author: str | None = None) -> None:
        """Show or hide the typing indicator in the visitor's widget (agents typing in the console)."""
        for conn in list(self._sockets.get(visitor_id, ())):
            await conn.push({"type": "typing", "active": bool(active), "author": author})

    async def _listen(self) -> None:
        async with self.ctx.bus.subscribe(Topic.MESSAGES, Topic.TYPING, RESYNC_TOPIC) as queue:
            while True:
                events = [await queue.get()]
                while not queue.empty():  # what one ingest batch committed arrives together: one query for all
                    events.append(queue.get_nowait())
                if any(topic == RESYNC_TOPIC for topic, _ in events):
                    try:
                        await self.catch_up()
                    except Exception:
                        log.exception("webchat catch-up failed")
                wanted: list[tuple[str, int]] = []
                for topic, payload in events:
                    try:
                        if topic == RESYNC_TOPIC:
                            continue
                        if payload.get("channel") != CHANNEL:
                            continue
                        thread = payload.get("thread_key")
                        if not isinstance(thread, str) or thread not in self._sockets:
                            continue
                        if topic == Topic.TYPING:
                            if payload.get("direction") != "inbound":
                                await self.notify_typing(thread, bool(payload.get("active")), payload.get("author"))
                            continue
                        content = payload.get("content")
                        if isinstance(content, dict):  # an outbound message that carries what the widget shows
                            await self._push_content(thread, int(payload["message_id"]),
                                                     str(payload.get("author_kind", "bot")), content)
                        else:
                            wanted.append((thread, int(payload["message_id"])))
                    except Exception:
                        log.exception("webchat live push failed")
                if wanted:
                    try:
                        await self._push_stored(wanted)
                    except Exception:
                        log.exception("webchat live push failed")

    async def _push_content(self, visitor_id: str, message_id: int, author: str, content: dict[str, Any]) -> None:
        shown = widget_frame(message_id, author, content["text"], content.get("created_at"),
                             content.get("attachments"), content.get("quick_replies"),
                           author_name=content.get("author_name"))
        for conn in list(self._sockets.get(visitor_id, ())):
            await conn.push_message(shown)

    async def _push_stored(self, wanted: list[tuple[str, int]]) -> None:
        """Push stored messages (visitor id, message id) to the visitors' sockets that do not show them yet."""
        targets = {(visitor_id, message_id): conns for visitor_id, message_id in wanted
                   if (conns := [c for c in self._sockets.get(visitor_id, ()) if message_id not in c.pushed])}
        if not targets:
            return
        async with self.ctx.sessionmaker() as session:
            rows = await repository.messages_for_push(session, sorted({m for _, m in targets}))
        for (_, message_id), conns in targets.items():
            row = rows.get(message_id)
            if row is None:
                continue
            frame = message_frame(*row)
            for conn in conns:
                await conn.push_message(frame)

    async def _catch_up_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.catch_up_seconds)
            try:
                await self.catch_up(announce=False)
            except Exception:
                log.exception("webchat periodic catch-up failed")

    async def catch_up(self, batch: int = 1000, *, announce: bool = True) -> int:
        """Push every open socket the messages after its cursor it has not been sent; returns how many.

        `announce`: send every socket its new cursor (a "sync" frame); the periodic pass tells only the sockets
        it pushed something to, so a quiet widget is not sent a frame every half minute.
        """
        async with self._catch_up_lock:
            return await self._catch_up(batch, announce)

    async def _catch_up(self, batch: int, announce: bool) -> int:
        conns = [c for cs in self._sockets.values() for c in cs]
        if not conns:
            return 0
        self.catch_ups += 1
        touched: set[Connection] = set()
        after = min(c.rescan_from for c in conns)
        top, pushed = after, 0
        while True:
            async with self.ctx.sessionmaker() as session:
                rows = await repository.visible_after(session, after, batch)
            for message, payload, visitor_id in rows:
                targets = [c for c in self._sockets.get(visitor_id, ())
                           if message.id > c.rescan_from and message.id not in c.pushed]
                if targets:
                    frame = message_frame(message, payload)
                    for conn in targets:
                        await conn.push_message(frame)
                    pushed += len(targets)
                    touched.update(targets)
            if rows:
                top = after = rows[-1][0].id
            if len(rows) < batch:
                break
        for conn in conns:
            conn.rescan_from = conn.cursor
            if top > conn.cursor:
                conn.cursor = top
                if announce or conn in touched:
                    await conn.push({"type": "sync", "cursor": top})
        self.caught_up += pushed
        if pushed:
            log.info("webchat caught up", extra={"messages": pushed, "sockets": len(conns)})
        return pushed

    # -- availability ----------------------------------------------------------------------------------

    async def availability(self, lang: str) -> tuple[bool, str | None]:
        """Whether an operator can answer now, and the notice to show when not."""
        now = time.monotonic()
        cached = self._availability
        if cached is None or now - cached[0] > _AVAILABILITY_TTL:
            online, key = True, None
            if not self._within_hours(utcnow()):
                online, key = False, "webchat.offline_hours"
            else:
                since = utcnow() - timedelta(minutes=self.settings.agent_presence_minutes)
                async with self.ctx.sessionmaker() as session:
                    if await repository.agents_online(session, since) == 0:
                        online, key = False, "webchat.offline_agents"
            self._availability = cached = (now, online, key, "")
        _, online, key, _ = cached
        notice = i18n.translator(lang)(key, hours=self.settings.office_hours or "") if key else None
        return online, notice

    def _within_hours(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.settings.timezone))
        if local.weekday() not in self.settings.office_days:
            return False
        if not self.settings.office_hours:
            return True
        start, end = self.settings.office_hours.split("-")
        return start <= local.strftime("%H:%M") < end

    # -- the socket ------------------------------------------------------------------------------------

    async def serve(self, ws: WebSocket, signing_key: bytes, address: str = "unknown") -> None:
        """Run one widget connection (from the client `address`) until it closes."""
        origin = ws.headers.get("origin")
        if self.settings.allowed_origins and origin not in self.settings.allowed_origins:
            await ws.close(code=CLOSE_POLICY, reason="origin not allowed")
            return
        wait = self._connections.take(address)
        await ws.accept()
        if wait > 0:
            # Accepted only to say why: a refused handshake reaches the page as a bare 1006 with no reason.
            retry_after = max(1, math.ceil(wait))
            await self._error(ws, "too_many_connections", "too many connections from your address; "
                              f"try again in {retry_after} s", retry_after=retry_after)
            await ws.close(code=CLOSE_TOO_MANY_CONNECTIONS, reason=f"too_many_connections retry_after={retry_after}")
            return
        try:
            conn = await self._authenticate(ws, signing_key)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # Sign-in reads the history (and who is online): without the database, say so and let the widget
            # reconnect later, instead of a socket that dies with a server error.
            self.health.error(f"database unavailable: {type(exc).__name__}: {exc}"[:300])
            await self._error(ws, "unavailable", UNAVAILABLE)
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await ws.close(code=CLOSE_TRY_AGAIN, reason="database unavailable")
            return
        if conn is None:
            return
        self._sockets[conn.visitor_id].add(conn)
        self.health.details["sockets"] = self.socket_count
        try:
            await self._receive_loop(conn)
        finally:
            conns = self._sockets.get(conn.visitor_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    self._sockets.pop(conn.visitor_id, None)
            self.health.details["sockets"] = self.socket_count

    async def _error(self, ws: WebSocket, code: str, message: str, **extra: Any) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await ws.send_text(json.dumps({"type": "error", "code": code, "message": message, **extra},
                                          ensure_ascii=False))

    async def _authenticate(self, ws: WebSocket, signing_key: bytes) -> Connection | None:
        try:
            async with asyncio.timeout(self.settings.auth_timeout_seconds):
                raw = await ws.receive_text()
        except TimeoutError:
            await self._error(ws, "auth_timeout", "send an auth frame first")
            await ws.close(code=CLOSE_AUTH_TIMEOUT)
            return None
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return None
        try:
            frame = self._decode(raw)
            if frame.get("type") != "auth":
                raise FrameError("auth_required", "the first frame must be {\"type\": \"auth\"}")
            lang = frame.get("lang") if frame.get("lang") in ("ru", "en") else "en"
            sender, token = self._identify(frame, signing_key)
            last_seen = frame.get("last_seen_id", 0)
            if not isinstance(last_seen, int) or last_seen < 0:
                raise FrameError("bad_frame", "last_seen_id must be a non-negative integer")
        except FrameError as exc:
            await self._error(ws, exc.code, exc.message)
            code = CLOSE_IDENTITY_INVALID if exc.code.startswith("identity") else CLOSE_AUTH_FAILED
            await ws.close(code=code, reason=exc.code)
            return None
        conn = Connection(ws, sender, str(lang), self.settings, self.ctx.clock.monotonic)
        online, notice = await self.availability(conn.lang)
        ready: dict[str, Any] = {"type": "ready", "visitor_id": sender.external_id, "online": online,
                                 "notice": notice, "lang": conn.lang}
        if token is not None:
            ready["session_token"] = token
        await conn.push(ready)
        if token is None:
            await self._send_history(conn, last_seen)
        else:  # a session born just now has no history to look up
            await conn.push({"type": "history", "messages": [], "complete": True})
        return conn

    def _identify(self, frame: dict[str, Any], signing_key: bytes) -> tuple[SenderInfo, str | None]:
        """A known user (signed identifier) or an anonymous visitor (signed session token)."""
        name = (frame["name"][:200] or None) if isinstance(frame.get("name"), str) else None
        email = frame.get("email") if isinstance(frame.get("email"), str) else None
        origin, time_zone = visitor_page(frame.get("page")), visitor_zone(frame.get("tz"))
        identifier = frame.get("identifier")
        if identifier is not None:
            given = frame.get("identifier_hash")
            if not isinstance(identifier, str) or not 1 <= len(identifier) <= 300:
                raise FrameError("identity_invalid", "identifier must be a string of 1-300 characters")
            if self.settings.identity_secret is None:
                raise FrameError("identity_disabled", "identity validation is not configured on this server")
            if not isinstance(given, str) or not tokens.verify_identity(
                    self.settings.identity_secret.get_secret_value(), identifier, given):
                raise FrameError("identity_invalid",
                                 "identifier_hash does not match: it must be HMAC-SHA256(site secret, identifier)")
            # The site vouches for its user, so its email counts as verified and links other channels.
            valid_email = email if email and re.fullmatch(r"[^@\s]+@[^@\s]+", email) else None
            return SenderInfo(external_id=tokens.identified_visitor_id(identifier), name=name,
                              email=valid_email,
                              verified=valid_email is not None and self.settings.trust_signed_identity,
                              origin=origin, time_zone=time_zone), None
        token = frame.get("token")
        ttl = self.settings.session_ttl_days * 86400
        visitor_id = tokens.verify_session_token(signing_key, token, ttl) if isinstance(token, str) else None
        fresh = visitor_id is None
        if visitor_id is None:
            visitor_id = tokens.new_visitor_id()  # no token, or a forged/expired one: a new anonymous session
        issued = tokens.issue_session_token(signing_key, visitor_id) if fresh else None
        return SenderInfo(external_id=visitor_id, name=name,
                          origin=origin, time_zone=time_zone), issued

    async def _send_history(self, conn: Connection, after: int) -> None:
        limit = self.settings.history_limit
        async with self.ctx.sessionmaker() as session:
            latest = await repository.latest_message_id(session)
            rows = await repository.history(session, conn.visitor_id, after, limit)
        messages = [message_frame(m, p) for m, p in rows]
        for m in messages:
            conn.remember(int(m["id"]))
        complete = len(messages) < limit or after == 0
        # Complete: everything up to the newest message anywhere has been sent (read before the history).
        cursor = max(latest if complete else 0, after, int(messages[-1]["id"]) if messages else 0)
        if cursor > conn.cursor:
            conn.cursor = conn.rescan_from = cursor
        await conn.push({"type": "history", "messages": messages, "complete": complete,
                         "cursor": conn.cursor})

    def _decode(self, raw: str) -> dict[str, Any]:
        if len(raw.encode()) > self.settings.max_frame_bytes:
            raise FrameError("too_large", f"frames are limited to {self.settings.max_frame_bytes} bytes")
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json can read
            raise FrameError("bad_frame", "a frame must be a JSON object") from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("bad_frame", "a frame must be a JSON object with a \"type\"")
        if frame["type"] == "auth":
            # Where the visitor came from is a courtesy, never a reason to refuse sign-in: a page or zone that
            # cannot be stored is dropped here, and any other unusable one by visitor_page/visitor_zone.
            for key in ("page", "tz"):
                if unstorable_reason(frame.get(key)) is not None:
                    frame.pop(key)
        # Lone surrogates ("\ud800" is valid JSON), NUL, deep nesting: refused here with the reason, before they
        # could fail a transaction the widget would retry for ever.
        reason = unstorable_reason(frame)
        if reason is not None:
            raise FrameError("bad_frame", f"the frame cannot be stored: {reason}")
        return frame

    async def _receive_loop(self, conn: Connection) -> None:
        while True:
            try:
                message = await conn.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            wait = conn.frames.take()
            if wait > 0:
                await self._error(conn.ws, "rate_limited", "too many frames; closing",
                                  retry_after=max(1, math.ceil(wait)))
                await conn.ws.close(code=CLOSE_POLICY, reason="flood")
                return
            raw = message.get("text")
            try:
                if raw is None:
                    raise FrameError("bad_frame", "binary frames are not supported; send JSON text")
                await self._handle(conn, self._decode(raw))
            except FrameError as exc:
                await self._error(conn.ws, exc.code, exc.message, **exc.extra)
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                self.health.error(f"database unavailable: {type(exc).__name__}: {exc}"[:300])
                await self._error(conn.ws, "unavailable", UNAVAILABLE)

    async def _handle(self, conn: Connection, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in ("message", "quick_reply"):
            await self._on_message(conn, frame)
        elif kind == "typing":
            self.ctx.bus.publish(Topic.TYPING, Typing(channel=CHANNEL, direction="inbound", thread_key=conn.visitor_id,
                                                      active=bool(frame.get("active"))))
        elif kind == "history":
            after = frame.get("after", 0)
            if not isinstance(after, int) or after < 0:
                raise FrameError("bad_frame", "after must be a non-negative integer")
            await self._send_history(conn, after)
        elif kind == "ping":
            await conn.push({"type": "pong"})
        else:
            raise FrameError("bad_frame", f"unknown frame type {kind!r}")

    async def _on_message(self, conn: Connection, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id")
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            raise FrameError("bad_frame", "client_id must be 1-64 characters of A-Z a-z 0-9 _ -")
        extra: dict[str, Any] = {"client_id": client_id}
        if frame["type"] == "quick_reply":
            payload, title = frame.get("payload"), frame.get("title")
            if not isinstance(payload, str) or not 1 <= len(payload) <= 200:
                raise FrameError("bad_frame", "quick_reply needs a payload", client_id=client_id)
            text = title if isinstance(title, str) and title.strip() else payload
            extra["quick_reply"] = payload
            if is_survey_payload(payload):
                score = survey_score(payload)
                if score is None:
                    raise FrameError("bad_frame", "a rating is a score from 1 to 5", client_id=client_id)
                extra["csat"] = score
        else:
            given = frame.get("text")
            if not isinstance(given, str) or not given.strip():
                raise FrameError("bad_frame", "text must be a non-empty string", client_id=client_id)
            text = given
        if len(text) > self.settings.max_message_chars or "\x00" in text:
            raise FrameError("too_large", f"messages are limited to {self.settings.max_message_chars} characters",
                             client_id=client_id)
        wait = conn.messages.take()
        if wait > 0:
            raise FrameError("rate_limited", "you are sending messages too fast", client_id=client_id,
                             retry_after=round(wait, 2))
        inbound = InboundMessage(
            channel=CHANNEL, external_message_id=f"{conn.visitor_id}:{client_id}", sender=conn.sender, text=text[:4000],
            thread_key=conn.visitor_id, language_hint=conn.lang, extra=extra,
        )
        try:
            result = await self.ctx.ingest.ingest(inbound)
        except Exception as exc:
            log.exception("webchat ingest failed")
            self.health.error(f"ingest failed: {type(exc).__name__}: {exc}")
            # Not acked: the widget keeps the message and resends it.
            raise FrameError("unavailable", "the message could not be stored; it will be resent",
                             client_id=client_id) from exc
        conn.remember(result.message_id)
        self.health.received()
        await conn.push({"type": "ack", "client_id": client_id, "id": result.message_id,
                         "ticket": result.ticket_number, "duplicate": not result.created})
