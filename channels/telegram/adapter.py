"""The Telegram channel: python-telegram-bot's Application inside our lifespan, webhook or long polling.

Decisions (see also ARCHITECTURE.md):
- Idempotency: a message is keyed `<chat id>:<message id>`, an edit `edit:<chat>:<message>:<edit date>`, a
  button press `cb:<callback query id>`; the ingest pipeline makes a redelivery a no-op. In polling mode the
  getUpdates offset moves past an update only after its ingest committed (Telegram keeps unconfirmed
  updates, and the offset is also kept in core's channel cursors); in webhook mode Telegram gets 200 only after
  the commit (or after quarantining an unparseable update, so it does not resend it forever).
- `/start`, a shared contact and content the bot cannot read (stickers, voice, video notes, locations...)
  are answered directly and create no ticket: they are not appeals, and tickets made of stickers are noise
  for agents. A shared contact that is the user's own links the verified phone to the customer.
- The sender's external id is the chat id, so the outbox answers into the chat the customer wrote from.
- Updates are read from their JSON (`parse_update`) into small frozen dataclasses holding the fields the channel
  uses, not into PTB's `Update` objects: building those cost 0.22 ms of CPU per update for fields we never read.
  Every field read is type- and range-checked; an update of the wrong shape is quarantined with the reason.
- The sends on the hot path (sendMessage, answerCallbackQuery) and getUpdates go through `Bot._post`, PTB's request
  stack without the answer turned into PTB objects (a Message per send: 0.3 ms of CPU); PTB's error mapping
  (Forbidden, RetryAfter, BadRequest, NetworkError) is kept. Files, chat actions and set-up use PTB's methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application
from telegram.request import HTTPXRequest

from channels import http
from channels.base import (
    ChannelContext,
    ChannelHealth,
    FileRef,
    PermanentSendError,
    RecentIds,
    download_files,
    is_json_int,
    send_parts,
)
from channels.telegram.settings import TelegramChannelSettings
from core.attachments.policy import AttachmentPolicy, safe_filename
from core.csat.service import is_survey_payload, survey_score
from core.cursors import repository as cursors
from core.customers import service as customer_service
from core.db.base import utcnow
from core.db.outage import is_database_outage
from core.db.session import finish_even_if_cancelled
from core.errors import NotFoundError
from core.i18n import language_of_tag, translator
from core.ingest.schemas import AttachmentInfo, InboundMessage, SenderInfo
from core.jobs import Backoff, Job, JobContext, JobHealth
from core.outbox.schemas import OutboundEnvelope, QuickReply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_TEXT = 4096
CONNECT_JOB = "telegram:connect"
POLLING_JOB = "telegram:polling"

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


class TelegramRateLimited(Exception):
    """Telegram asked to slow down (429); the outbox retries later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited by Telegram, retry after {retry_after}s")
        self.retry_after = retry_after


class UnparseableUpdate(Exception):
    """An update that cannot become a message (no chat, a field of the wrong type): quarantined with the reason."""


class UnreadableResponse(TelegramError):
    """A Bot API response that is not JSON Python can read (e.g. an update nested thousands of levels deep)."""

    def __init__(self, payload: bytes, reason: str) -> None:
        super().__init__(f"unreadable Bot API response: {reason}")
        self.payload = payload
        self.reason = reason


class _Request(HTTPXRequest):
    """PTB's HTTP client over aiohttp's transport (channels/http.py), except that a response json cannot read (a
    RecursionError is not a ValueError, so PTB lets it escape) is an UnreadableResponse carrying the raw bytes,
    so the poller can quarantine it."""

    def _build_client(self) -> httpx.AsyncClient:
        # A new transport for every client PTB builds (it builds one again after a shutdown).
        kwargs = dict(getattr(self, "_client_kwargs", {}))
        if not kwargs or kwargs.get("proxy") is not None or kwargs.get("transport") is not None:
            return super()._build_client()  # PTB's own client (a proxy, a transport given)
        kwargs["transport"] = http.transport(kwargs.pop("limits", None))
        return httpx.AsyncClient(**kwargs)

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(payload.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as exc:
            raise UnreadableResponse(payload, f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        return data


def worth_retrying(exc: BaseException) -> bool:
    """Errors that mean "not now" (the database is down, Telegram or the network cannot be reached): the update is
    delivered again later. Anything else is about the update itself and retrying would fail the same way."""
    if is_database_outage(exc):
        return True
    if isinstance(exc, BadRequest):  # a subclass of NetworkError, but the same request fails again
        return False
    return isinstance(exc, NetworkError | RetryAfter | OSError)


def _dump(raw: Any) -> str:
    try:
        return json.dumps(raw, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return repr(raw)[:100_000] if not isinstance(raw, dict | list) else "<not serialisable>"


def inline_keyboard(quick_replies: list[QuickReply]) -> dict[str, Any] | None:
    """Quick replies as an InlineKeyboardMarkup: CSAT scores side by side in one row, every other button on its
    own row."""
    if not quick_replies:
        return None

    def button(reply: QuickReply) -> dict[str, str]:
        return {"text": reply.title[:64], "callback_data": reply.payload[:64]}

    csat = [button(q) for q in quick_replies if is_survey_payload(q.payload)]
    rows = [[button(q)] for q in quick_replies if not is_survey_payload(q.payload)]
    return {"inline_keyboard": ([csat] if csat else []) + rows}


def share_phone_keyboard(lang: str) -> dict[str, Any]:
    """A ReplyKeyboardMarkup with one button that shares the user's own contact card."""
    return {"keyboard": [[{"text": translator(lang)("telegram.share_phone"), "request_contact": True}]],
            "resize_keyboard": True, "one_time_keyboard": True}


REMOVE_KEYBOARD: dict[str, Any] = {"remove_keyboard": True}  # a ReplyKeyboardRemove


def sent_message_id(result: Any) -> str | None:
    """The id of the message a send's raw answer describes (None if the answer has none: it was still sent)."""
    message_id = result.get("message_id") if isinstance(result, dict) else None
    return str(message_id) if is_json_int(message_id) else None


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Telegram caps a message at 4096 characters: cut at line breaks where possible."""
    text = text or " "
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    chunks.append(text)
    return chunks


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"+{digits}" if digits else phone[:32]


# -- reading updates -----------------------------------------------------------------------------------
# The fields of an update the channel uses, read straight from its JSON. Telegram's ids are signed 64-bit at most;
# a date is a Unix time a datetime can hold. Whatever is read is checked: an update of another shape is an
# UnparseableUpdate with the field and what is wrong with it (quarantined, never retried).

MAX_ID = 2**63
MAX_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds
MAX_PHONE = 64  # Telegram's numbers have at most 15 digits; the rest of the room is for "+", spaces, dashes
MAX_MIME_TYPE = 255  # what an attachment's content type may hold


@dataclass(frozen=True, slots=True)
class TelegramUser:
    """The sender of a message or of a button press."""

    id: int
    full_name: str | None  # "first last", as PTB's User.full_name builds it; None without a first name
    language_code: str | None


@dataclass(frozen=True, slots=True)
class TelegramFile:
    """A photo (its largest size) or a document: what its download and the attachment policy need."""

    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


@dataclass(frozen=True, slots=True)
class TelegramContact:
    """A shared contact card; `user_id` is the Telegram user it belongs to, if they have an account."""

    phone_number: str
    user_id: int | None


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """A message or an edit of one (`edited`), from `message` or `edited_message`."""

    chat_id: int
    message_id: int
    sender: TelegramUser | None
    date: datetime
    edit_date: datetime | None
    text: str | None
    caption: str | None
    photo: TelegramFile | None
    document: TelegramFile | None
    contact: TelegramContact | None
    edited: bool = False


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A press of an inline button (a callback query)."""

    id: str
    sender: TelegramUser
    chat_id: int  # the chat of the message the button is under; the sender's own chat without one
    data: str  # the button's callback data, stripped; never empty
    title: str  # the pressed button's text from the message's keyboard; the data when it is not there


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnparseableUpdate(f"{where} is {'missing' if value is None else 'not an object'}")
    return value


def _integer(value: Any, where: str, low: int = -MAX_ID, high: int = MAX_ID - 1) -> int:
    if value is None:
        raise UnparseableUpdate(f"{where} is missing")
    if not is_json_int(value):
        raise UnparseableUpdate(f"{where} is not an integer")
    if not low <= value <= high:
        raise UnparseableUpdate(f"{where} is out of range")
    return value


def _optional_integer(value: Any, where: str, low: int = -MAX_ID) -> int | None:
    return None if value is None else _integer(value, where, low)


def _string(value: Any, where: str, limit: int | None = None) -> str:
    if value is None:
        raise UnparseableUpdate(f"{where} is missing")
    if not isinstance(value, str):
        raise UnparseableUpdate(f"{where} is not a string")
    if limit is not None and len(value) > limit:
        raise UnparseableUpdate(f"{where} is over {limit} characters")
    return value


def _optional_string(value: Any, where: str, limit: int | None = None) -> str | None:
    return None if value is None else _string(value, where, limit)


def _date(value: Any, where: str) -> datetime:
    return datetime.fromtimestamp(_integer(value, where, 0, MAX_DATE), UTC)


def _user(value: Any, where: str) -> TelegramUser:
    user = _object(value, where)
    first = _optional_string(user.get("first_name"), f"{where}.first_name")
    last = _optional_string(user.get("last_name"), f"{where}.last_name")
    return TelegramUser(id=_integer(user.get("id"), f"{where}.id"),
                        full_name=(f"{first} {last}" if last else first) if first else None,
                        language_code=_optional_string(user.get("language_code"), f"{where}.language_code"))


def _file(value: Any, where: str) -> TelegramFile:
    file = _object(value, where)
    return TelegramFile(file_id=_string(file.get("file_id"), f"{where}.file_id"),
                        file_unique_id=_string(file.get("file_unique_id"), f"{where}.file_unique_id"),
                        file_name=_optional_string(file.get("file_name"), f"{where}.file_name"),
                        mime_type=_optional_string(file.get("mime_type"), f"{where}.mime_type", MAX_MIME_TYPE),
                        file_size=_optional_integer(file.get("file_size"), f"{where}.file_size", 0))


def _largest_photo(value: Any, where: str) -> TelegramFile | None:
    """The last of a photo's sizes (Telegram lists them smallest first); only that one is read."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise UnparseableUpdate(f"{where} is not a list")
    return _file(value[-1], f"{where}[-1]") if value else None


def _contact(value: Any, where: str) -> TelegramContact | None:
    if value is None:
        return None
    contact = _object(value, where)
    return TelegramContact(phone_number=_string(contact.get("phone_number"), f"{where}.phone_number", MAX_PHONE),
                           user_id=_optional_integer(contact.get("user_id"), f"{where}.user_id"))


def _message(value: Any, where: str, *, edited: bool) -> TelegramMessage:
    message = _object(value, where)
    chat = _object(message.get("chat"), f"{where}.chat")
    sender, edit_date, document = message.get("from"), message.get("edit_date"), message.get("document")
    return TelegramMessage(
        chat_id=_integer(chat.get("id"), f"{where}.chat.id"),
        message_id=_integer(message.get("message_id"), f"{where}.message_id"),
        sender=None if sender is None else _user(sender, f"{where}.from"),
        date=_date(message.get("date"), f"{where}.date"),
        edit_date=None if edit_date is None else _date(edit_date, f"{where}.edit_date"),
        text=_optional_string(message.get("text"), f"{where}.text"),
        caption=_optional_string(message.get("caption"), f"{where}.caption"),
        photo=_largest_photo(message.get("photo"), f"{where}.photo"),
        document=None if document is None else _file(document, f"{where}.document"),
        contact=_contact(message.get("contact"), f"{where}.contact"),
        edited=edited,
    )


def _button_title(message: dict[str, Any], data: str, where: str) -> str | None:
    """The text of the button carrying `data` in the message's inline keyboard (the last such, as Telegram shows)."""
    markup = message.get("reply_markup")
    if markup is None:
        return None
    keyboard = _object(markup, f"{where}.reply_markup").get("inline_keyboard")
    if keyboard is None:
        return None
    if not isinstance(keyboard, list):
        raise UnparseableUpdate(f"{where}.reply_markup.inline_keyboard is not a list")
    title = None
    for row in keyboard:
        if not isinstance(row, list):
            raise UnparseableUpdate(f"{where}.reply_markup.inline_keyboard has a row that is not a list")
        for button in row:
            if not isinstance(button, dict):
                raise UnparseableUpdate(f"{where}.reply_markup.inline_keyboard has a button that is not an object")
            if button.get("callback_data") == data:
                title = _string(button.get("text"), f"{where}.reply_markup.inline_keyboard[].text")
    return title


def _button_press(value: Any, where: str) -> ButtonPress:
    query = _object(value, where)
    press_id = _string(query.get("id"), f"{where}.id")
    sender = _user(query.get("from"), f"{where}.from")
    data = (_optional_string(query.get("data"), f"{where}.data") or "").strip()
    if not data:
        raise UnparseableUpdate("callback query without data")
    message = query.get("message")
    if message is None:  # a button under an inline-mode message: no chat in the update, the sender's is it
        return ButtonPress(id=press_id, sender=sender, chat_id=sender.id, data=data, title=data)
    message = _object(message, f"{where}.message")
    chat = _object(message.get("chat"), f"{where}.message.chat")
    return ButtonPress(id=press_id, sender=sender, chat_id=_integer(chat.get("id"), f"{where}.message.chat.id"),
                       data=data, title=_button_title(message, data, f"{where}.message") or data)


def parse_update(raw: dict[str, Any]) -> TelegramMessage | ButtonPress | None:
    """The message or button press an update carries; None for the kinds the channel does not handle.

    Raises:
        UnparseableUpdate: the update has the wrong shape (the reason names the field).
    """
    if raw.get("callback_query") is not None:
        return _button_press(raw["callback_query"], "callback_query")
    if raw.get("message") is not None:
        return _message(raw["message"], "message", edited=False)
    if raw.get("edited_message") is not None:
        return _message(raw["edited_message"], "edited_message", edited=True)
    return None


def callback_query_id(raw: dict[str, Any]) -> str | None:
    """The id of the callback query an update carries, if it has a readable one (answered even when the rest of
    the update is unusable, or the customer's client shows a spinner on the button)."""
    query = raw.get("callback_query")
    press_id = query.get("id") if isinstance(query, dict) else None
    return press_id if isinstance(press_id, str) and press_id else None


class TelegramChannel:
    """One bot; `process_webhook` is fed by the webhook route, the polling loop feeds `process_raw` itself."""

    kind: ClassVar[str] = CHANNEL

    def __init__(self, settings: TelegramChannelSettings, ctx: ChannelContext) -> None:
        if settings.token is None:
            raise ValueError("the Telegram channel needs a token")
        self.settings = settings
        self.ctx = ctx
        self.health = ChannelHealth()
        self.health.details["mode"] = settings.mode
        self.ready = asyncio.Event()
        self._application: TelegramApp | None = None
        self._requests: tuple[_Request, ...] = ()  # the Bot API clients of the application built last
        self._recent = RecentIds()  # update ids already handled (fast path)
        self._offset: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def _token(self) -> str:
        if self.settings.token is None:
            raise ValueError("the Telegram channel needs a token")
        return self.settings.token.get_secret_value()

    def _build(self) -> TelegramApp:
        timeout = self.settings.request_timeout_seconds
        token = self._token()
        self._requests = (
            _Request(connection_pool_size=max(8, self.settings.webhook_max_connections + 8),
                     connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout),
            _Request(connect_timeout=timeout, write_timeout=timeout, pool_timeout=timeout),
        )
        application = (
            Application.builder()
            .token(token)
            .base_url(self.settings.base_url)
            .base_file_url(self.settings.base_file_url)
            .updater(None)
            .request(self._requests[0])
            .get_updates_request(self._requests[1])
            .build()
        )
        return application

    @property
    def bot(self) -> Bot:
        if self._application is None or not self.ready.is_set():
            raise RuntimeError("the Telegram channel is not connected yet")
        bot: Bot = self._application.bot
        return bot

    async def start(self) -> None:
        self.health.state = "starting"
        self._application = self._build()
        self.ctx.jobs.start(Job(CONNECT_JOB, body=self._connect, backoff=self._backoff()))

    async def stop(self) -> None:
        await self.ctx.jobs.stop([CONNECT_JOB, POLLING_JOB])
        if self._application is not None and self.ready.is_set():
            with contextlib.suppress(Exception):
                await self._application.shutdown()
        # Never connected (getMe kept failing): PTB shuts down only what it initialized, and the clients that tried
        # to reach the Bot API hold open connection pools.
        for request in self._requests:
            with contextlib.suppress(Exception):
                await request.shutdown()
        self.ready.clear()
        self.health.state = "stopped"

    def _backoff(self) -> Backoff:
        return Backoff(initial=0.5, maximum=max(0.5, self.settings.retry_backoff_max_seconds))

    async def _connect(self, ctx: JobContext) -> None:
        """Connect (getMe, webhook set-up; retried by the job with backoff), then start polling in polling mode."""
        if self._application is None:
            raise RuntimeError("start() builds the application first")
        try:
            await self._application.initialize()
            await self._configure_delivery()
        except Exception as exc:
            self.health.error(f"connect failed: {type(exc).__name__}: {exc}")
            log.warning("telegram connect failed", extra={"error": str(exc)[:200]})
            raise
        self.ready.set()
        me = self._application.bot
        self.health.details["bot"] = me.username
        self.health.ok()
        if self.settings.mode == "polling":
            # Telegram serves getUpdates to one poller per bot (a second one gets 409 Conflict): one instance polls,
            # the others stand by and take over when its lease ends.
            self.ctx.jobs.start(Job(POLLING_JOB, body=self._poll, lease=f"telegram:polling:{me.id}",
                                    standby_seconds=self.settings.standby_seconds, backoff=self._backoff(),
                                    on_change=self._poller_changed))

    def _poller_changed(self, job: JobHealth) -> None:
        if job.state == "standby":
            if self.health.state != "standby":
                log.info("another instance polls this bot; standing by")
            self.health.state = "standby"
        elif job.state == "backing_off" and job.last_error:
            # The lease was lost, the database or Telegram is down: tried again after the backoff, never given up.
            self.health.error(f"polling failed: {job.last_error}"[:300])  # the registry logs it

    async def _configure_delivery(self) -> None:
        if self._application is None:
            raise RuntimeError("start() builds the application first")
        bot = self._application.bot
        if self.settings.mode == "webhook":
            if self.settings.webhook_url and self.settings.webhook_secret is not None:
                await bot.set_webhook(
                    url=self.settings.webhook_url, secret_token=self.settings.webhook_secret.get_secret_value(),
                    allowed_updates=ALLOWED_UPDATES, max_connections=self.settings.webhook_max_connections,
                )
        else:
            # getUpdates is refused while a webhook is set; pending updates are kept.
            await bot.delete_webhook(drop_pending_updates=False)
            self._offset = await self._load_offset()

    # -- polling ---------------------------------------------------------------------------------------

    def _offset_path(self) -> Path:
        """Where versions before the cursor table kept the offset (imported once, then removed)."""
        return self.ctx.data_dir / "telegram" / f"offset-{self._cursor_name()}.json"

    def _cursor_name(self) -> str:
        return str(self._application.bot.id if self._application is not None else 0)

    def _read_offset_file(self) -> int | None:
        try:
            value = json.loads(self._offset_path().read_text())["offset"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return int(value) if isinstance(value, int) else None

    async def _load_offset(self) -> int | None:
        """The bot's update offset from the channel cursors; an offset file of an older version is imported once."""
        async with self.ctx.sessionmaker() as session:
            row = await cursors.get(session, CHANNEL, self._cursor_name())
        if row is not None:
            try:
                return int(row.value)
            except ValueError:
                log.warning("unreadable Telegram offset in the cursors; reading from Telegram's own",
                            extra={"value": row.value[:50]})
                return None
        offset = await asyncio.to_thread(self._read_offset_file)
        if offset is not None:
            async with self.ctx.sessionmaker() as session, session.begin():
                await cursors.put(session, CHANNEL, self._cursor_name(), str(offset), utcnow())
            await asyncio.to_thread(self._offset_path().unlink, missing_ok=True)
            log.info("Telegram offset file imported into the channel cursors", extra={"offset": offset})
        return offset

    async def _get_updates(self, limit: int = 100) -> list[Any]:
        timeout = self.settings.poll_timeout_seconds
        kwargs: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES, "limit": limit}
        if self._offset is not None:
            kwargs["offset"] = self._offset
        # Raw JSON, not Bot.get_updates: one malformed update must be quarantined, not fail the whole batch.
        result = await self._call("getUpdates", kwargs, read_timeout=timeout + self.settings.request_timeout_seconds)
        return result if isinstance(result, list) else []

    async def _poll(self, ctx: JobContext) -> None:
        """Poll for as long as this instance holds the bot's lease; a failure ends it (the job retries)."""
        self.health.ok()
        while True:
            await ctx.check_lease()  # LeaseLost ends this poller: another instance may be polling now
            try:
                batch = await self._get_updates()
            except UnreadableResponse:
                batch = await self._read_one_by_one()
            for raw in batch:
                await self.process_raw(raw)
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                if is_json_int(update_id):
                    # Past this update only now: its ingest committed (or it was quarantined).
                    await self._advance(update_id)
            self.health.ok()
            ctx.succeeded()

    async def _advance(self, update_id: int) -> None:
        self._offset = update_id + 1
        offset = self._offset

        async def save() -> None:
            async with self.ctx.sessionmaker() as session, session.begin():
                await cursors.put(session, CHANNEL, self._cursor_name(), str(offset), utcnow())

        # A stop (the job is cancelled) waits for the offset's transaction instead of abandoning it.
        await finish_even_if_cancelled(save())

    async def _read_one_by_one(self) -> list[Any]:
        """A batch nobody can read: take the first update alone; if that one is unreadable, it is the poison, kept
        in quarantine with its raw bytes and passed over (the update id is found in the bytes)."""
        try:
            return await self._get_updates(limit=1)
        except UnreadableResponse as exc:
            match = re.search(rb'"update_id"\s*:\s*(\d+)', exc.payload)
            if match is None:
                raise  # nothing to pass over by: polling retries, and the error shows in health
            await self.ctx.ingest.quarantine(CHANNEL, f"unreadable update: {exc.reason}", exc.payload,
                                             "application/json")
            self.health.received()
            await self._advance(int(match.group(1)))
            return []

    # -- inbound ---------------------------------------------------------------------------------------

    async def process_webhook(self, body: bytes) -> None:
        """One webhook delivery. Raises only when the update should be redelivered (e.g. database down)."""
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's json can go
            await self.ctx.ingest.quarantine(CHANNEL, f"invalid JSON: {type(exc).__name__}: {str(exc)[:200]}",
                                             body, "application/json")
            self.health.received()
            return
        await self.process_raw(raw)

    async def process_raw(self, raw: Any) -> None:
        """Parse one update and handle it; one that cannot be parsed or stored because of what it carries is
        quarantined with the reason, never retried forever. Raises only what is worth a redelivery (an outage)."""
        if not isinstance(raw, dict) or not is_json_int(raw.get("update_id")):
            await self.ctx.ingest.quarantine(CHANNEL, "not a Telegram update (no integer update_id)", _dump(raw),
                                             "application/json")
            return
        update_id: int = raw["update_id"]
        if update_id in self._recent:
            return
        if self._application is None:
            raise RuntimeError("the Telegram channel is not started")
        press_id = callback_query_id(raw)
        try:
            update = parse_update(raw)
            if isinstance(update, ButtonPress):
                await self._on_button_press(update)
            elif update is not None:
                await self._on_message(update)
            else:
                log.debug("telegram update ignored", extra={"update_id": update_id})
        except UnparseableUpdate as failure:
            await self.ctx.ingest.quarantine(CHANNEL, f"unusable update: {failure}"[:1000], _dump(raw),
                                             "application/json")
        except ValueError as exc:
            # What the update carries cannot be stored (a lone surrogate, a NUL, a field over its length): the
            # message's validation says so; a redelivery would fail the same way.
            await self.ctx.ingest.quarantine(CHANNEL, f"unusable update: {type(exc).__name__}: {exc}"[:1000],
                                             _dump(raw), "application/json")
        except Exception as exc:
            if worth_retrying(exc):
                raise
            # Not an outage: this update would fail the same way on every redelivery (and hold up the bot's
            # queue behind it). Kept with the reason for an admin instead.
            log.exception("telegram update failed; quarantined", extra={"update_id": update_id})
            await self.ctx.ingest.quarantine(CHANNEL, f"update failed: {type(exc).__name__}: {exc}"[:1000],
                                             _dump(raw), "application/json")
        finally:
            if press_id is not None:
                # Always, whatever became of the press, or the customer's client shows a spinner on the button.
                await self._answer_callback(press_id)
        self._remember(update_id)
        self.health.received()

    def _remember(self, update_id: int) -> None:
        self._recent.add(update_id)

    def _sender(self, chat_id: int, user: TelegramUser | None, *, phone: str | None = None,
                verified: bool = False) -> SenderInfo:
        name = user.full_name[:200] if user is not None and user.full_name else None
        return SenderInfo(external_id=str(chat_id), name=name, phone=phone, verified=verified)

    async def _on_message(self, message: TelegramMessage) -> None:
        chat_id, user, edited = message.chat_id, message.sender, message.edited
        lang = language_of_tag(user.language_code if user else None)
        text = message.text or message.caption or ""
        command = (message.text or "").split(maxsplit=1)
        if not edited and command and command[0].split("@")[0] == "/start":
            await self._reply(chat_id, translator(lang)("telegram.start"), share_phone_keyboard(lang))
            return
        if message.contact is not None:
            if not edited:
                await self._on_contact(message, message.contact, lang)
            return
        if edited:
            stamp = int(message.edit_date.timestamp()) if message.edit_date else 0
            external_id = f"edit:{chat_id}:{message.message_id}:{stamp}"
        else:
            external_id = f"{chat_id}:{message.message_id}"
        if not text.strip() and message.photo is None and message.document is None:
            if not edited:
                await self._reply(chat_id, translator(lang)("telegram.unsupported"))
            return
        has_files = message.photo is not None or message.document is not None
        if has_files and await self.ctx.ingest.find_existing(CHANNEL, external_id) is not None:
            return  # a redelivery: do not download again (without files, ingest itself answers a redelivery)
        files: list[FileRef] = []  # (file id, name, content type, size)
        if message.photo is not None:
            photo = message.photo
            files.append((photo.file_id, f"photo-{photo.file_unique_id}.jpg", "image/jpeg", photo.file_size))
        if message.document is not None:
            doc = message.document
            files.append((doc.file_id, doc.file_name or f"document-{doc.file_unique_id}",
                          doc.mime_type or "application/octet-stream", doc.file_size))
        attachments, rejected = await download_files(files, self._download)
        extra: dict[str, Any] = {"telegram": {"chat_id": chat_id, "message_id": message.message_id}}
        if edited:
            extra["edited"] = True
        if rejected:
            # As for e-mail: the message is kept, the file is not, and agents see why.
            extra["rejected_attachments"] = rejected
        inbound = InboundMessage(
            channel=CHANNEL, external_message_id=external_id, sender=self._sender(chat_id, user), text=text,
            attachments=tuple(attachments), thread_key=str(chat_id), language_hint=lang, extra=extra,
            received_at=(message.edit_date if edited and message.edit_date else message.date),
        )
        await self.ctx.ingest.ingest(inbound)

    async def _on_contact(self, message: TelegramMessage, contact: TelegramContact, lang: str) -> None:
        user = message.sender
        if user is None or contact.user_id != user.id:
            # Someone else's contact card proves nothing about this customer's number.
            await self._reply(message.chat_id, translator(lang)("telegram.contact_foreign"),
                              share_phone_keyboard(lang))
            return
        phone = normalise_phone(contact.phone_number)
        async with self.ctx.sessionmaker() as session, session.begin():
            await customer_service.resolve_identity(
                session, CHANNEL, self._sender(message.chat_id, user, phone=phone,
                                               verified=self.settings.trust_shared_contact))
        await self._reply(message.chat_id, translator(lang)("telegram.contact_linked", phone=phone), REMOVE_KEYBOARD)

    async def _on_button_press(self, press: ButtonPress) -> None:
        extra: dict[str, Any] = {"quick_reply": press.data, "telegram": {"chat_id": press.chat_id,
                                                                           "callback_query_id": press.id}}
        score = survey_score(press.data)
        if score is not None:
            extra["csat"] = score
        inbound = InboundMessage(
            channel=CHANNEL, external_message_id=f"cb:{press.id}", sender=self._sender(press.chat_id, press.sender),
            # The button's title is what the customer "said"; the payload travels in extra.
            text=press.title, thread_key=str(press.chat_id),
            language_hint=language_of_tag(press.sender.language_code), extra=extra,
        )
        await self.ctx.ingest.ingest(inbound)

    async def _answer_callback(self, callback_query_id: str) -> None:
        try:
            await self._call("answerCallbackQuery", {"callback_query_id": callback_query_id})
        except TelegramError as exc:
            log.info("answerCallbackQuery failed", extra={"error": str(exc)[:200]})

    async def _download(self, file_id: str, filename: str, content_type: str, size: int | None,
                        index: int) -> tuple[AttachmentInfo | None, dict[str, Any] | None]:
        """(the stored file, None) or (None, the refusal to record), by the attachment policy; what it refuses
        by its declared name, type or size is never downloaded."""
        name = safe_filename(filename, content_type)
        policy = AttachmentPolicy(max_bytes=self.settings.max_download_bytes)
        verdict = policy.check(name, content_type, size, index=index)
        if verdict.refusal is None:
            tg_file = await self.bot.get_file(file_id)
            size = tg_file.file_size or size
            verdict = policy.check(name, content_type, size, index=index)
            if verdict.refusal is None:
                data = bytes(await tg_file.download_as_bytearray())
                size = len(data)
                verdict = policy.check(name, content_type, size, index=index, data=data)
                if verdict.refusal is None:
                    stored = await self.ctx.files.save(name, verdict.content_type, data, namespace=CHANNEL)
                    return stored, None
        refusal = verdict.refusal
        log.info("telegram attachment refused", extra={"filename": name, "reason": refusal.reason})
        return None, refusal.record(name, verdict.content_type, size)

    async def _reply(self, chat_id: int, text: str, markup: dict[str, Any] | None = None) -> None:
        """A direct answer outside the outbox (no ticket behind it); best effort."""
        try:
            await self._send_text(chat_id, text, markup)
        except TelegramError as exc:
            log.info("telegram direct reply failed", extra={"chat_id": chat_id, "error": str(exc)[:200]})

    async def _call(self, method: str, params: dict[str, Any], *, read_timeout: float | None = None) -> Any:
        """One Bot API method through PTB's request stack; the raw result (a dict, a list, True).

        `Bot._post` is what PTB's own methods call: it builds the request (None values dropped, objects and dicts
        serialised) and raises PTB's errors (Forbidden, RetryAfter, BadRequest, NetworkError, TimedOut), but
        leaves the answer as JSON instead of turning it into PTB objects, most of a send's CPU cost.
        """
        if read_timeout is None:
            return await self.bot._post(method, params)
        return await self.bot._post(method, params, read_timeout=read_timeout)

    async def _send_text(self, chat_id: int, text: str, markup: dict[str, Any] | None = None) -> str | None:
        """sendMessage; the id of the message sent."""
        params: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if markup is not None:
            params["reply_markup"] = markup
        return sent_message_id(await self._call("sendMessage", params))

    # -- outbound --------------------------------------------------------------------------------------

    async def _send_attachment(self, chat_id: int, attachment: dict[str, Any]) -> None:
        """One sendDocument after the text: a file from the attachment store, or a public URL Telegram fetches."""
        key, url = attachment.get("storage_key"), attachment.get("url")
        if key:
            try:
                data = await self.ctx.files.read(str(key))
            except NotFoundError as exc:
                raise PermanentSendError(f"attachment {key!r} is not in the attachment store") from exc
            name = safe_filename(str(attachment.get("filename") or str(key).rsplit("/", 1)[-1]))
            await self.bot.send_document(chat_id=chat_id, document=data, filename=name)
        elif isinstance(url, str) and url.startswith(("http://", "https://")):
            await self.bot.send_document(chat_id=chat_id, document=url,
                                         caption=str(attachment.get("filename") or "")[:1024] or None)

    async def send_typing(self, recipient: str) -> None:
        """Show "typing…" in the customer's chat (an agent is writing a reply; Telegram shows it for 5 s)."""
        try:
            chat_id = int(recipient)
        except ValueError as exc:
            raise PermanentSendError(f"not a Telegram chat id: {recipient!r}") from exc
        await self.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        try:
            chat_id = int(envelope.recipient)
        except ValueError as exc:
            raise PermanentSendError(f"not a Telegram chat id: {envelope.recipient!r}") from exc
        text = envelope.text
        if envelope.author_kind == "agent" and envelope.author_name:
            # A bot speaks for everyone in Telegram: the agent's name heads their reply.
            text = f"{envelope.author_name}:\n{text}"
        chunks = split_text(text)
        markup = inline_keyboard(envelope.quick_replies)
        # The message's parts in order: the text (in chunks; the buttons on the last one), then each file.
        parts: list[Callable[[], Awaitable[str | None]]] = []
        for index, chunk in enumerate(chunks):
            keyboard = markup if index == len(chunks) - 1 else None

            async def send_text(chunk: str = chunk, keyboard: dict[str, Any] | None = keyboard) -> str | None:
                return await self._send_text(chat_id, chunk, keyboard)

            parts.append(send_text)
        for attachment in envelope.attachments:

            async def send_file(attachment: dict[str, Any] = attachment) -> None:
                await self._send_attachment(chat_id, attachment)

            parts.append(send_file)
        return await send_parts(parts, envelope, self._send_failure)

    def _send_failure(self, exc: Exception) -> Exception:
        """What a Bot API error means for the outbox."""
        if isinstance(exc, Forbidden):  # the user blocked the bot or deleted the account
            self.health.details["last_refusal"] = str(exc)[:200]
            return PermanentSendError(f"Telegram refused: {exc}")
        if isinstance(exc, RetryAfter):
            wait = exc.retry_after  # seconds; a timedelta with PTB_TIMEDELTA set (PTB's coming default)
            return TelegramRateLimited(wait.total_seconds() if isinstance(wait, timedelta) else float(wait))
        if isinstance(exc, BadRequest):  # chat not found, message malformed: the same request cannot succeed
            return PermanentSendError(f"Telegram rejected the message: {exc}")
        return exc
