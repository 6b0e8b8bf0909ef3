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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application
from telegram.request import HTTPXRequest
from telegram.warnings import PTBUserWarning

from channels import http
from channels.base import (
    ChannelContext,
    ChannelHealth,
    FileRef,
    PermanentSendError,
    RecentIds,
    download_files,
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
    """An update that cannot become a message (no chat, wrong shape)."""


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
        limits = kwargs.pop("limits", None)
        kwargs.pop("proxy", None)
        kwargs["transport"] = http.transport(limits)
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


def inline_keyboard(quick_replies: list[QuickReply]) -> InlineKeyboardMarkup | None:
    """Quick replies as inline buttons: CSAT scores side by side in one row, every other button on its own row."""
    if not quick_replies:
        return None
    csat = [InlineKeyboardButton(q.title[:64], callback_data=q.payload[:64])
            for q in quick_replies if is_survey_payload(q.payload)]
    rows = [[InlineKeyboardButton(q.title[:64], callback_data=q.payload[:64])]
            for q in quick_replies if not is_survey_payload(q.payload)]
    return InlineKeyboardMarkup(([csat] if csat else []) + rows)


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
        application = (
            Application.builder()
            .token(token)
            .base_url(self.settings.base_url)
            .base_file_url(self.settings.base_file_url)
            .updater(None)
            .request(_Request(connection_pool_size=max(8, self.settings.webhook_max_connections + 8),
                              connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
                              pool_timeout=timeout))
            .get_updates_request(_Request(connect_timeout=timeout, write_timeout=timeout, pool_timeout=timeout))
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
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)
            result = await self.bot.do_api_request(
                "getUpdates", api_kwargs=kwargs, read_timeout=timeout + self.settings.request_timeout_seconds
            )
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
                if isinstance(update_id, int):
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
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            await self.ctx.ingest.quarantine(CHANNEL, "not a Telegram update (no integer update_id)", _dump(raw),
                                             "application/json")
            return
        update_id: int = raw["update_id"]
        if update_id in self._recent:
            return
        try:
            update = Update.de_json(raw, self.bot)
        except Exception as exc:
            await self.ctx.ingest.quarantine(CHANNEL, f"unparseable update: {type(exc).__name__}: {exc}",
                                             _dump(raw), "application/json")
            self._remember(update_id)
            return
        if self._application is None:
            raise RuntimeError("the Telegram channel is not started")
        try:
            await self._on_update(update)
        except UnparseableUpdate as failure:
            await self.ctx.ingest.quarantine(CHANNEL, f"unusable update: {failure}", _dump(raw), "application/json")
        except Exception as exc:
            if worth_retrying(exc):
                raise
            # Not an outage: this update would fail the same way on every redelivery (and hold up the bot's
            # queue behind it). Kept with the reason for an admin instead.
            log.exception("telegram update failed; quarantined", extra={"update_id": update_id})
            await self.ctx.ingest.quarantine(CHANNEL, f"update failed: {type(exc).__name__}: {exc}"[:1000],
                                             _dump(raw), "application/json")
        self._remember(update_id)
        self.health.received()

    def _remember(self, update_id: int) -> None:
        self._recent.add(update_id)

    async def _on_update(self, update: Update) -> None:
        """Handle one parsed update. Called directly, not through PTB's dispatcher (which would only log a
        handler's error and builds a context per update we do not use): an error propagates, so the update is
        redelivered, except UnparseableUpdate, which process_raw quarantines."""
        try:
            if update.callback_query is not None:
                await self._on_callback(update.callback_query)
            elif update.message is not None:
                await self._on_message(update.message, edited=False)
            elif update.edited_message is not None:
                await self._on_message(update.edited_message, edited=True)
            else:
                log.debug("telegram update ignored", extra={"update_id": update.update_id})
        except UnparseableUpdate:
            raise
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # The update parsed but lacks what a message needs (no chat, wrong types, invalid fields):
            # a payload problem, not an outage, so it is quarantined instead of redelivered forever.
            raise UnparseableUpdate(f"{type(exc).__name__}: {exc}") from exc

    def _sender(self, chat_id: int, user: User | None, *, phone: str | None = None,
                verified: bool = False) -> SenderInfo:
        name = user.full_name[:200] if user is not None else None
        return SenderInfo(external_id=str(chat_id), name=name, phone=phone, verified=verified)

    async def _on_message(self, message: Message, *, edited: bool) -> None:
        chat_id = message.chat.id
        user = message.from_user
        lang = language_of_tag(user.language_code if user else None)
        text = message.text or message.caption or ""
        if not edited and message.text and message.text.split()[0].split("@")[0] == "/start":
            await self._reply(chat_id, translator(lang)("telegram.start"), self._share_phone_keyboard(lang))
            return
        if message.contact is not None:
            if not edited:
                await self._on_contact(message, user, lang)
            return
        if edited:
            stamp = int(message.edit_date.timestamp()) if message.edit_date else 0
            external_id = f"edit:{chat_id}:{message.message_id}:{stamp}"
        else:
            external_id = f"{chat_id}:{message.message_id}"
        if not text.strip() and not message.photo and message.document is None:
            if not edited:
                await self._reply(chat_id, translator(lang)("telegram.unsupported"))
            return
        has_files = bool(message.photo) or message.document is not None
        if has_files and await self.ctx.ingest.find_existing(CHANNEL, external_id) is not None:
            return  # a redelivery: do not download again (without files, ingest itself answers a redelivery)
        files: list[FileRef] = []  # (file id, name, content type, size)
        if message.photo:
            largest = message.photo[-1]
            files.append((largest.file_id, f"photo-{largest.file_unique_id}.jpg", "image/jpeg", largest.file_size))
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

    async def _on_contact(self, message: Message, user: User | None, lang: str) -> None:
        contact = message.contact
        if contact is None or user is None or contact.user_id != user.id:
            # Someone else's contact card proves nothing about this customer's number.
            await self._reply(message.chat.id, translator(lang)("telegram.contact_foreign"),
                              self._share_phone_keyboard(lang))
            return
        phone = normalise_phone(contact.phone_number)
        async with self.ctx.sessionmaker() as session, session.begin():
            await customer_service.resolve_identity(
                session, CHANNEL, self._sender(message.chat.id, user, phone=phone,
                                                       verified=self.settings.trust_shared_contact))
        await self._reply(message.chat.id, translator(lang)("telegram.contact_linked", phone=phone),
                          ReplyKeyboardRemove())

    async def _on_callback(self, query: CallbackQuery) -> None:
        try:
            message = query.message
            chat_id = message.chat.id if message is not None else query.from_user.id
            payload = (query.data or "").strip()
            if not payload:
                raise UnparseableUpdate("callback query without data")
            title = payload
            markup = getattr(message, "reply_markup", None)
            if isinstance(markup, InlineKeyboardMarkup):
                for row in markup.inline_keyboard:
                    for button in row:
                        if button.callback_data == payload:
                            title = button.text
            extra: dict[str, Any] = {"quick_reply": payload, "telegram": {"chat_id": chat_id,
                                                                          "callback_query_id": query.id}}
            score = survey_score(payload)
            if score is not None:
                extra["csat"] = score
            user = query.from_user
            inbound = InboundMessage(
                channel=CHANNEL, external_message_id=f"cb:{query.id}", sender=self._sender(chat_id, user),
                # The button's title is what the customer "said"; the payload travels in extra.
                text=title, thread_key=str(chat_id), language_hint=language_of_tag(user.language_code),
                extra=extra,
            )
            await self.ctx.ingest.ingest(inbound)
        finally:
            # Always, or the customer's client shows a spinner on the button.
            try:
                await self.bot.answer_callback_query(query.id)
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

    @staticmethod
    def _share_phone_keyboard(lang: str) -> ReplyKeyboardMarkup:
        return ReplyKeyboardMarkup([[KeyboardButton(translator(lang)("telegram.share_phone"), request_contact=True)]],
                                   resize_keyboard=True, one_time_keyboard=True)

    async def _reply(self, chat_id: int, text: str, markup: Any = None) -> None:
        """A direct answer outside the outbox (no ticket behind it); best effort."""
        try:
            await self.bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
        except TelegramError as exc:
            log.info("telegram direct reply failed", extra={"chat_id": chat_id, "error": str(exc)[:200]})

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
        bot = self.bot
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

            async def send_text(chunk: str = chunk, keyboard: InlineKeyboardMarkup | None = keyboard) -> str:
                return str((await bot.send_message(chat_id=chat_id, text=chunk, reply_markup=keyboard)).message_id)

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
            retry_after = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") \
                else float(exc.retry_after)
            return TelegramRateLimited(retry_after)
        if isinstance(exc, BadRequest):  # chat not found, message malformed: the same request cannot succeed
            return PermanentSendError(f"Telegram rejected the message: {exc}")
        return exc
