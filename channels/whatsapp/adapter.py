"""The WhatsApp channel: Cloud API webhooks in, `/<phone number id>/messages` out, plain httpx.

Decisions (see also ARCHITECTURE.md and the WhatsApp records of docs/decisions.md):
- No client library: the channel needs two Graph API calls (the phone number, `/messages`), each a JSON request
  answering JSON or `{"error": {...}}`; the maintained Python packages for WhatsApp are bot frameworks.
- Authentication: the verification handshake answers `hub.challenge` only to the configured verify token; every
  POST must carry `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body with the app secret. A request without
  the right signature is refused (403) before anything is parsed or stored, so strangers cannot fill the quarantine.
- Idempotency: a message is keyed by its `wamid`; Meta resends a webhook until it gets a 200, and the ingest
  pipeline makes the resend a no-op. Recent ids are also remembered in memory (no database round trip).
- Media in (image, document, audio, video, sticker): the media's URL is asked of the Graph API, then the file is
  fetched with the token, only from `media_hosts` (the token must not go elsewhere) and streamed under the size
  limit; a file that cannot be had keeps the message, listed with the reason, as for e-mail and VK.
- Statuses (sent/delivered/read/failed) are kept on the outbox row of the message they name (its
  `provider_message_id`) as `payload["delivery"]`: the highest state reached, or `failed` with Meta's reason.
  A message sent in parts records each part's id in `outbox_parts`; the row then shows its least advanced part.
- Templates: the business account's list (`GET /<WABA id>/message_templates`) is cached in `provider_templates`,
  read by the adapter's job every `templates_refresh_seconds` (under a lease: one instance reads) and on demand,
  the Graph API never inside a database transaction; a reply carrying `template` is sent as `type: template` (body
  parameters only), its refusals (paused, unknown, parameter count...) final, in words.
- Typing: the Cloud API shows "typing…" only while marking a received message read, so `send_typing` marks the
  customer's latest message read with the indicator, at most once per `typing_seconds` per number.
- Outbound: HTTP 429, 5xx, 401/403 and the throughput errors (4, 80007, 130429, 131048, 131056) are retried by
  the outbox with its backoff; any other 4xx is final - notably 131047, outside the 24-hour customer-service
  window, where only an approved template may be sent. The Cloud API has no idempotency key: a retry after a lost
  answer can repeat a part (text longer than 4,096 characters goes in parts; the outbox skips the parts done).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from channels import http
from channels.base import ChannelContext, ChannelHealth, PermanentSendError, RecentIds, is_json_int, send_parts
from channels.telegram.adapter import split_text
from channels.whatsapp.settings import WhatsappChannelSettings
from core.attachments.policy import AttachmentPolicy, safe_filename
from core.csat.service import survey_score
from core.customers.models import ChannelIdentity
from core.db.outage import is_database_outage
from core.errors import NotFoundError
from core.i18n import translator
from core.ingest.schemas import AttachmentInfo, InboundMessage, SenderInfo
from core.jobs import Backoff, Every, Job, JobContext
from core.jobs.tasks import DueTask, TaskHandlers
from core.outbox.models import OutboxMessage, OutboxPart
from core.outbox.schemas import OutboundEnvelope, QuickReply
from core.provider_templates import repository as template_repository
from core.provider_templates.service import template_row
from core.tickets.models import Direction, Message, Ticket

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
MAX_TEXT = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_BUTTONS = 3  # reply buttons; more quick replies become a list (up to 10 rows)
MAX_ROWS = 10
MAX_BUTTON_TITLE = 20
MAX_ROW_TITLE = 24
MAX_REPLY_ID = 256
CONNECT_JOB = "whatsapp:connect"
# 4 app rate limit, 80007 account rate limit, 130429 throughput, 131048 spam rate limit, 131056 pair rate limit.
RATE_LIMIT_ERRORS = frozenset({4, 80007, 130429, 131048, 131056})
WINDOW_CLOSED = 131047  # "Re-engagement message": more than 24 hours since the customer last wrote
DELIVERY_RANK = {"sent": 1, "delivered": 2, "read": 3}
STATUSES = frozenset({*DELIVERY_RANK, "failed"})
MEDIA_TYPES = frozenset({"image", "document", "audio", "video", "sticker"})
TEMPLATES_JOB = "whatsapp:templates"
RETIRED_TEMPLATES_TASK = "whatsapp.templates"  # the due-task kind the list was once read on (see retire_tasks)
TEMPLATE_PAGES = 50  # at most 50 pages of 100 templates are read (a business account has up to 6,000)
TEMPLATE_RETRY_SECONDS = 300.0  # a failed refresh is tried again this soon
# Template errors in words: the send is final, and the agent reads why.
TEMPLATE_ERRORS = {
    132000: "the number of parameters does not match the template",
    132001: "the template does not exist in this language (or is not approved yet)",
    132005: "the filled template is too long",
    132007: "the template's text breaks WhatsApp's format rules",
    132012: "a parameter has the wrong format",
    132015: "the template is paused (its quality rating is too low)",
    132016: "the template is disabled (paused too often)",
    132018: "a parameter has a line break, a tab or too many spaces",
}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "audio/ogg": ".ogg",
              "audio/mpeg": ".mp3", "video/mp4": ".mp4", "application/pdf": ".pdf"}


class GraphApiError(Exception):
    """The Graph API answered an error."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"WhatsApp API HTTP {status}: error {code}: {message}"[:500])
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500 or self.status in (401, 403) or \
            self.code in RATE_LIMIT_ERRORS


class UnusableEvent(Exception):
    """An authenticated payload that cannot become a message (wrong types, missing fields): quarantined."""


class Refused(Exception):
    """Not signed with the app secret (or a handshake with the wrong verify token)."""


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def interactive(text: str, quick_replies: list[QuickReply], list_label: str) -> dict[str, Any]:
    """Quick replies as reply buttons (up to three) or as a list (up to ten rows)."""
    if len(quick_replies) <= MAX_BUTTONS:
        action: dict[str, Any] = {"buttons": [
            {"type": "reply", "reply": {"id": q.payload[:MAX_REPLY_ID], "title": q.title[:MAX_BUTTON_TITLE]}}
            for q in quick_replies]}
        kind = "button"
    else:
        action = {"button": list_label[:MAX_BUTTON_TITLE], "sections": [{"rows": [
            {"id": q.payload[:MAX_REPLY_ID], "title": q.title[:MAX_ROW_TITLE]} for q in quick_replies[:MAX_ROWS]]}]}
        kind = "list"
    return {"type": kind, "body": {"text": text}, "action": action}


def _dump(raw: Any) -> str:
    try:
        return json.dumps(raw, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return "<not serialisable>"


def _str(value: Any, what: str, max_length: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise UnusableEvent(f"{what} is not a string")
    return value


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, str) and value.isdigit() and len(value) <= 11:
        seconds = int(value)
        return datetime.fromtimestamp(seconds, UTC) if 0 < seconds < 2**33 else None
    return None


def _advances(current: Any, new: dict[str, Any]) -> bool:
    """Whether a status moves a delivery on: failed is final, otherwise only a further state counts."""
    current_state = current.get("state") if isinstance(current, dict) else None
    if current_state == "failed":
        return False
    return new["state"] == "failed" or DELIVERY_RANK.get(str(current_state), 0) < DELIVERY_RANK[new["state"]]


class WhatsappChannel:
    """One business phone number; `process_webhook` is fed by the webhook route."""

    kind: ClassVar[str] = CHANNEL

    def __init__(self, settings: WhatsappChannelSettings, ctx: ChannelContext) -> None:
        if settings.access_token is None or settings.phone_number_id is None or settings.app_secret is None \
                or settings.verify_token is None:
            raise ValueError("the WhatsApp channel needs an access token, a phone number id, the app secret and "
                             "a verify token")
        self.settings = settings
        self.ctx = ctx
        self.health = ChannelHealth()
        self.health.details["phone_number_id"] = settings.phone_number_id
        self.ready = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._recent = RecentIds()  # message ids already handled (fast path)
        self._templates_read = False  # this adapter read the template list once (the first read is never skipped)
        self._typing_at: dict[str, float] = {}  # wa_id -> when its typing indicator was last sent

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the WhatsApp channel is not started")
        return self._client

    async def start(self) -> None:
        self.health.state = "starting"
        token = self.settings.access_token
        if token is None:
            raise RuntimeError("the WhatsApp channel needs an access token")
        self._client = http.client(
            base_url=f"{self.settings.api_base_url.rstrip('/')}/{self.settings.api_version}",
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            timeout=self.settings.request_timeout_seconds, follow_redirects=False)
        self.ctx.jobs.start(Job(CONNECT_JOB, body=self._connect, backoff=Backoff(
            initial=0.5, maximum=max(0.5, self.settings.retry_backoff_max_seconds))))
        if self.settings.waba_id is not None:
            every = self.settings.templates_refresh_seconds
            retry = min(every, TEMPLATE_RETRY_SECONDS)
            self.ctx.jobs.start(Job(
                TEMPLATES_JOB, tick=self._templates_tick, schedule=Every(every),
                lease=f"{TEMPLATES_JOB}:{self.settings.waba_id}", standby_seconds=retry,
                backoff=Backoff(initial=min(60.0, retry), maximum=retry)))

    async def stop(self) -> None:
        await self.ctx.jobs.stop([CONNECT_JOB, TEMPLATES_JOB])
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self.ready.clear()
        self.health.state = "stopped"

    async def _connect(self, ctx: JobContext) -> None:
        """Check the token against the phone number (retried by the job with backoff); webhooks are taken meanwhile."""
        try:
            number = await self.call("GET", f"/{self.settings.phone_number_id}",
                                     params={"fields": "display_phone_number,verified_name"})
        except Exception as exc:
            self.health.error(f"connect failed: {type(exc).__name__}: {exc}")
            log.warning("whatsapp connect failed", extra={"error": str(exc)[:200]})
            raise
        if isinstance(number.get("display_phone_number"), str):
            self.health.details["display_phone_number"] = number["display_phone_number"]
        self.ready.set()
        self.health.ok()

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One Graph API request; its JSON object or GraphApiError (the token goes in a header, never the URL)."""
        response = await self.client.request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) \
                else None
            message = str(error.get("message") or response.reason_phrase or "not a JSON object")
            if isinstance(details, str) and details:
                message = f"{message} ({details})"
            raise GraphApiError(response.status_code, code if isinstance(code, int) else 0, message)
        return data

    # -- inbound ---------------------------------------------------------------------------------------

    def verify(self, mode: str | None, token: str | None, challenge: str | None) -> str:
        """The verification handshake: the challenge back when the verify token is ours."""
        expected = self.settings.verify_token
        if mode != "subscribe" or token is None or challenge is None or expected is None or not hmac.compare_digest(
                token.encode(), expected.get_secret_value().encode()):
            raise Refused("wrong hub.mode or hub.verify_token")
        return challenge

    def _signed(self, body: bytes, given: str | None) -> bool:
        secret = self.settings.app_secret
        return secret is not None and given is not None and hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), signature(secret.get_secret_value(), body).encode())

    async def process_webhook(self, body: bytes, signature_header: str | None) -> None:
        """One webhook POST.

        Raises:
            Refused: not signed with the app secret: nothing parsed, nothing stored.
            Exception: anything worth a redelivery (the database down); Meta resends on a non-200 answer.
        """
        if not self._signed(body, signature_header):
            raise Refused("missing or wrong X-Hub-Signature-256")
        self.health.received()
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's json can go
            await self.ctx.ingest.quarantine(CHANNEL, f"invalid JSON: {type(exc).__name__}: {str(exc)[:200]}",
                                             body, "application/json")
            return
        try:
            values = self._values_of(raw)
        except UnusableEvent as exc:
            await self.ctx.ingest.quarantine(CHANNEL, f"unusable webhook: {exc}", _dump(raw), "application/json")
            return
        for value in values:
            await self._process_value(value)

    @staticmethod
    def _values_of(raw: Any) -> list[dict[str, Any]]:
        if not isinstance(raw, dict) or raw.get("object") != "whatsapp_business_account":
            raise UnusableEvent("not a whatsapp_business_account notification")
        entries = raw.get("entry")
        if not isinstance(entries, list):
            raise UnusableEvent("entry is not a list")
        values: list[dict[str, Any]] = []
        for entry in entries:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise UnusableEvent("changes is not a list")
            for change in changes:
                if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                    raise UnusableEvent("a change without a value object")
                if change.get("field") == "messages":
                    values.append(change["value"])
        return values

    async def _process_value(self, value: dict[str, Any]) -> None:
        metadata = value.get("metadata")
        number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
        if number != self.settings.phone_number_id:
            # Another number of the same app (signed with the same secret), or none: not ours to take.
            await self.ctx.ingest.quarantine(CHANNEL, "unusable webhook: not for the configured phone_number_id",
                                             _dump(value), "application/json")
            return
        contacts = value.get("contacts")
        names: dict[str, str] = {}
        if isinstance(contacts, list):
            for contact in contacts:
                profile = contact.get("profile") if isinstance(contact, dict) else None
                name = profile.get("name") if isinstance(profile, dict) else None
                if isinstance(contact, dict) and isinstance(contact.get("wa_id"), str) and isinstance(name, str):
                    names[contact["wa_id"]] = name[:200]
        for key, handler in (("messages", self._on_message), ("statuses", self._on_status)):
            items = value.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                await self.ctx.ingest.quarantine(CHANNEL, f"unusable webhook: {key} is not a list", _dump(value),
                                                 "application/json")
                continue
            for item in items:
                await self._guarded(item, handler, names)

    async def _guarded(self, item: Any, handler: Any, names: dict[str, str]) -> None:
        """One message or status; one that cannot be used is quarantined with the reason, never retried forever."""
        item_id = item.get("id") if isinstance(item, dict) else None
        key = f"{handler.__name__}:{item_id}:{item.get('status')}" if isinstance(item_id, str) else None
        if key is not None and key in self._recent:
            return
        try:
            if not isinstance(item, dict):
                raise UnusableEvent("an item is not an object")
            await handler(item, names)
        except Exception as exc:
            if is_database_outage(exc) or isinstance(exc, httpx.TransportError | OSError):
                raise
            reason = f"unusable event: {exc}" if isinstance(exc, UnusableEvent) else \
                f"event failed: {type(exc).__name__}: {exc}"
            if not isinstance(exc, UnusableEvent):
                log.exception("whatsapp event failed; quarantined", extra={"item_id": str(item_id)[:64]})
            await self.ctx.ingest.quarantine(CHANNEL, reason[:1000], _dump(item), "application/json")
        if key is not None:
            self._recent.add(key)

    def _sender(self, wa_id: str, name: str | None) -> SenderInfo:
        return SenderInfo(external_id=wa_id, name=name, phone=f"+{wa_id}",
                          verified=self.settings.trust_phone_number)

    async def _on_message(self, message: dict[str, Any], names: dict[str, str]) -> None:
        wa_id = _str(message.get("from"), "from", 32)
        if not wa_id.isdigit():
            raise UnusableEvent("from is not a phone number")
        message_id = _str(message.get("id"), "id")
        kind = message.get("type")
        text: str | None = None
        command: str | None = None
        if kind == "text":
            body = message.get("text")
            text = body.get("body") if isinstance(body, dict) else None
            if not isinstance(text, str):
                raise UnusableEvent("text.body is not a string")
        elif kind == "interactive":
            reply = message.get("interactive")
            reply_kind = reply.get("type") if isinstance(reply, dict) else None
            chosen = reply.get(reply_kind) if isinstance(reply, dict) and isinstance(reply_kind, str) else None
            if reply_kind not in ("button_reply", "list_reply") or not isinstance(chosen, dict):
                raise UnusableEvent("an interactive message without a button or list reply")
            command = _str(chosen.get("id"), "the reply id", MAX_REPLY_ID)
            text = chosen.get("title") if isinstance(chosen.get("title"), str) else command
        elif kind == "button":  # a quick-reply button of a template
            button = message.get("button")
            text = button.get("text") if isinstance(button, dict) else None
            command = button.get("payload") if isinstance(button, dict) else None
            if not isinstance(text, str):
                raise UnusableEvent("button.text is not a string")
            command = command if isinstance(command, str) and command else None
        media: dict[str, Any] | None = None
        if kind in MEDIA_TYPES:
            media = message.get(str(kind))
            if not isinstance(media, dict):
                raise UnusableEvent(f"a message of type {kind} without its {kind} object")
            _str(media.get("id"), "the media id", 128)
            caption = media.get("caption", "")
            if not isinstance(caption, str):
                raise UnusableEvent("caption is not a string")
            text = caption
        if media is None and (text is None or not text.strip()):
            if not isinstance(kind, str):
                raise UnusableEvent("type is not a string")
            await self._reply(wa_id, translator(self.settings.language)("whatsapp.unsupported"))
            return
        extra: dict[str, Any] = {"whatsapp": {"wa_id": wa_id, "message_id": message_id}}
        stored: tuple[AttachmentInfo, ...] = ()
        if media is not None:
            if await self.ctx.ingest.find_existing(CHANNEL, message_id) is not None:
                return  # a redelivery: do not download again
            kept, refused = await self._download(str(kind), media, message_id)
            stored = (kept,) if kept is not None else ()
            if refused is not None:
                extra["rejected_attachments"] = [refused]
        if command is not None:
            extra["quick_reply"] = command
            score = survey_score(command)
            if score is not None:
                extra["csat"] = score
        received = _timestamp(message.get("timestamp"))
        inbound = InboundMessage(
            channel=CHANNEL, external_message_id=message_id, sender=self._sender(wa_id, names.get(wa_id)),
            text=text or "", attachments=stored, thread_key=wa_id, extra=extra,
            **({"received_at": received} if received else {}))
        await self.ctx.ingest.ingest(inbound)

    def _host_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            return False
        hosts = self.settings.media_hosts
        host = parts.hostname.lower()
        return not hosts or any(host == h or host.endswith(f".{h}") for h in hosts)

    async def _download(self, kind: str, media: dict[str, Any], message_id: str
                        ) -> tuple[AttachmentInfo | None, dict[str, Any] | None]:
        """(the stored file, None) or (None, the refusal to record): the media's URL is asked of the Graph API,
        then the file is fetched with the token - only from a WhatsApp media host, never over the size limit."""
        content_type = media.get("mime_type") if isinstance(media.get("mime_type"), str) else \
            "application/octet-stream"
        content_type = str(content_type).split(";")[0].strip()[:100] or "application/octet-stream"
        given = media.get("filename")
        filename = given if isinstance(given, str) and given else \
            f"{kind}-{message_id[-24:]}{EXTENSIONS.get(content_type, '')}"
        name = safe_filename(filename, content_type)
        policy = AttachmentPolicy(max_bytes=self.settings.max_download_bytes)
        size: int | None = None

        def refusal(reason: str) -> tuple[None, dict[str, Any]]:
            log.info("whatsapp attachment refused", extra={"filename": name, "reason": reason[:200]})
            return None, {"filename": name, "content_type": content_type, "size": size, "reason": reason}

        try:
            info = await self.call("GET", f"/{media['id']}")
        except GraphApiError as exc:
            if exc.retryable:
                raise
            return refusal(f"the file could not be downloaded: {str(exc)[:200]}")
        url = info.get("url")
        declared = info.get("file_size")
        size = declared if is_json_int(declared) and declared >= 0 else None
        verdict = policy.check(name, content_type, size, index=0)
        if verdict.refusal is not None:
            return None, verdict.refusal.record(name, verdict.content_type, size)
        if not isinstance(url, str) or not self._host_allowed(url):
            return refusal("the file is not on a WhatsApp media host")
        try:
            data = await self._fetch(url, self.settings.max_download_bytes)
        except (httpx.HTTPError, ValueError) as exc:
            return refusal(f"the file could not be downloaded: {str(exc)[:200]}")
        size = len(data)
        verdict = policy.check(name, content_type, size, index=0, data=data)
        if verdict.refusal is not None:
            return None, verdict.refusal.record(name, verdict.content_type, size)
        return await self.ctx.files.save(name, verdict.content_type, data, namespace=CHANNEL), None

    async def _fetch(self, url: str, limit: int) -> bytes:
        """The file's bytes, streamed: one over the limit is cut off, not read into memory."""
        async with self.client.stream("GET", url) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > limit:
                    # The policy refuses it by its size; only a byte over the limit is kept to say so.
                    chunks.append(chunk[: max(0, len(chunk) - (total - limit - 1))])
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    async def _on_status(self, status: dict[str, Any], _names: dict[str, str]) -> None:
        message_id = _str(status.get("id"), "id", 512)
        state = status.get("status")
        if state not in STATUSES:
            raise UnusableEvent(f"unknown status {str(state)[:40]!r}")
        at = _timestamp(status.get("timestamp")) or self.ctx.clock.now()
        delivery: dict[str, Any] = {"state": state, "at": at.isoformat()}
        if state == "failed":
            errors = status.get("errors")
            first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
            code = first.get("code")
            title = first.get("title") or first.get("message") or "failed"
            delivery["error"] = f"{code}: {str(title)[:300]}" if isinstance(code, int) else str(title)[:300]
        # One statement finds the row, by its own id or by one of its parts' (the first part's id is both).
        in_parts = select(OutboxPart.outbox_id).where(OutboxPart.channel == CHANNEL,
                                                      OutboxPart.provider_message_id == message_id)
        own = select(OutboxMessage.id).where(OutboxMessage.provider_message_id == message_id,
                                             OutboxMessage.channel == CHANNEL)
        async with self.ctx.sessionmaker() as session, session.begin():
            found = (await session.execute(
                select(OutboxMessage, OutboxMessage.id.in_(in_parts))
                .where(OutboxMessage.id.in_(union_all(own, in_parts)))
                .order_by(OutboxMessage.id).limit(1).with_for_update(of=OutboxMessage))).first()
            if found is None:
                return  # a direct answer (no outbox row) or a message sent by another system
            row, is_part = found
            if is_part:
                await self._part_status(session, row, message_id, delivery)
                return
            current = (row.payload or {}).get("delivery")
            if not _advances(current, delivery):
                return  # statuses arrive out of order: keep the furthest one
            row.payload = {**(row.payload or {}), "delivery": delivery}
            if state == "failed":
                row.last_error = f"WhatsApp: delivery failed: {delivery['error']}"[:1000]

    async def _part_status(self, session: AsyncSession, row: OutboxMessage, message_id: str,
                           delivery: dict[str, Any]) -> None:
        """A status of one part of a message sent in parts: the part keeps its furthest state, the message shows
        the least advanced part (failed when any part failed; none until every part has a state)."""
        parts = list((await session.scalars(select(OutboxPart).where(OutboxPart.outbox_id == row.id)
                                            .order_by(OutboxPart.part).with_for_update())).all())
        for part in parts:
            if part.provider_message_id == message_id and _advances(
                    {"state": part.state} if part.state else None, delivery):
                part.state, part.at, part.error = delivery["state"], datetime.fromisoformat(delivery["at"]), \
                    delivery.get("error")
        failed = next((p for p in parts if p.state == "failed"), None)
        if failed is not None:
            summary: dict[str, Any] = {"state": "failed", "at": failed.at.isoformat() if failed.at else delivery["at"],
                                       "error": f"part {failed.part + 1} of {len(parts)}: {failed.error}"}
        elif all(p.state for p in parts):
            least = min(parts, key=lambda p: DELIVERY_RANK.get(str(p.state), 0))
            summary = {"state": least.state, "at": least.at.isoformat() if least.at else delivery["at"]}
        else:
            return  # a part has no state yet: it is the least advanced
        summary["parts"] = len(parts)
        if (row.payload or {}).get("delivery") == summary:
            return
        row.payload = {**(row.payload or {}), "delivery": summary}
        if summary["state"] == "failed":
            row.last_error = f"WhatsApp: delivery failed: {summary['error']}"[:1000]

    async def _reply(self, wa_id: str, text: str) -> None:
        """A direct answer outside the outbox (no ticket behind it); best effort."""
        try:
            await self._send_message(wa_id, {"type": "text", "text": {"body": text}})
        except Exception as exc:
            log.info("whatsapp direct reply failed", extra={"error": str(exc)[:200]})

    # -- approved templates ----------------------------------------------------------------------------

    async def fetch_templates(self) -> list[dict[str, Any]]:
        """The business account's templates as rows, every page (GraphApiError, transport errors raise)."""
        if self.settings.waba_id is None:
            raise RuntimeError("no WhatsApp Business Account id (waba_id) is configured")
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        params: dict[str, Any] = {"fields": "name,language,status,category,components", "limit": 100}
        skipped = 0
        for _ in range(TEMPLATE_PAGES):
            page = await self.call("GET", f"/{self.settings.waba_id}/message_templates", params=params)
            items = page.get("data")
            if not isinstance(items, list):
                raise GraphApiError(200, 0, "message_templates: data is not a list")
            for item in items:
                row = template_row(item)
                if row is None:
                    skipped += 1
                else:
                    rows[(row["name"], row["language"])] = row
            paging = page.get("paging")
            cursors = paging.get("cursors") if isinstance(paging, dict) else None
            after = cursors.get("after") if isinstance(cursors, dict) else None
            if not (isinstance(paging, dict) and paging.get("next") and isinstance(after, str) and after):
                break
            params = {**params, "after": after}
        self.health.details["templates"] = len(rows)
        if skipped:
            self.health.details["templates_skipped"] = skipped
        return list(rows.values())

    async def refresh_templates(self, session: AsyncSession | None = None) -> int:
        """Read the templates now and store them; returns how many there are. A failed read keeps the old list and
        raises. The console's button passes its request's unit of work; the job passes none and stores them in one
        short transaction opened after the Graph API answered."""
        try:
            rows = await self.fetch_templates()
        except (GraphApiError, httpx.HTTPError) as exc:
            self.health.details["templates_error"] = str(exc)[:200]
            raise
        now = self.ctx.jobs.clock.now()
        if session is not None:
            await template_repository.replace_all(session, CHANNEL, rows, now)
        else:
            async with self.ctx.sessionmaker() as own, own.begin():
                await template_repository.replace_all(own, CHANNEL, rows, now)
        self.health.details.pop("templates_error", None)
        self._templates_read = True
        return len(rows)

    async def _templates_tick(self, ctx: JobContext) -> None:
        """Every `templates_refresh_seconds` under the WABA's lease: one instance reads at a time, and a list another
        instance (or the button) stored less than an interval ago is not read again. A failure is retried by the
        job's backoff, sooner than the next interval."""
        if self._templates_read:
            async with self.ctx.sessionmaker() as session:
                last = await template_repository.fetched_at(session, CHANNEL)
            if last is not None and ctx.clock.now() - last < timedelta(seconds=self.settings.templates_refresh_seconds):
                return
        try:
            await self.refresh_templates()
        except (GraphApiError, httpx.HTTPError) as exc:
            log.warning("whatsapp templates not refreshed", extra={"error": str(exc)[:200]})
            raise

    # -- outbound --------------------------------------------------------------------------------------

    async def _send_message(self, to: str, content: dict[str, Any]) -> str:
        data = await self.call("POST", f"/{self.settings.phone_number_id}/messages", json={
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **content})
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        message_id = first.get("id")
        if not isinstance(message_id, str):
            raise GraphApiError(200, 0, "no message id in the answer")
        return message_id

    async def _send_attachment(self, to: str, attachment: dict[str, Any]) -> str:
        """A file of the attachment store uploaded as media and sent as a document; a link as its text."""
        key, url = attachment.get("storage_key"), attachment.get("url")
        name = safe_filename(str(attachment.get("filename") or str(key or url or "file").rsplit("/", 1)[-1]))
        if key:
            try:
                data = await self.ctx.files.read(str(key))
            except NotFoundError as exc:
                raise PermanentSendError(f"attachment {key!r} is not in the attachment store") from exc
            content_type = str(attachment.get("content_type") or "application/octet-stream")
            uploaded = await self.call("POST", f"/{self.settings.phone_number_id}/media",
                                       data={"messaging_product": "whatsapp", "type": content_type},
                                       files={"file": (name, data, content_type)})
            media_id = uploaded.get("id")
            if not isinstance(media_id, str):
                raise GraphApiError(200, 0, "no media id in the upload answer")
            return await self._send_message(to, {"type": "document",
                                                 "document": {"id": media_id, "filename": name}})
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return await self._send_message(to, {"type": "text", "text": {
                "body": f"{attachment.get('filename')}\n{url}" if attachment.get("filename") else url,
                "preview_url": False}})
        raise PermanentSendError("an attachment with neither a stored file nor a link")

    async def send_typing(self, recipient: str) -> None:
        """"Typing…" for the customer: the Cloud API ties it to marking their latest message read, and shows it up
        to 25 seconds or until the reply; sent at most once per `typing_seconds` per customer."""
        if not recipient.isdigit():
            return
        now = self.ctx.clock.monotonic()
        last = self._typing_at.get(recipient)
        if last is not None and now - last < self.settings.typing_seconds:
            return
        message_id = await self._latest_inbound_id(recipient)
        if message_id is None:
            return
        if len(self._typing_at) >= 10_000:
            horizon = now - self.settings.typing_seconds
            self._typing_at = {k: v for k, v in self._typing_at.items() if v >= horizon}
        self._typing_at[recipient] = now
        await self.call("POST", f"/{self.settings.phone_number_id}/messages", json={
            "messaging_product": "whatsapp", "status": "read", "message_id": message_id,
            "typing_indicator": {"type": "text"}})
        self.health.details["typing_sent"] = int(self.health.details.get("typing_sent", 0)) + 1

    async def _latest_inbound_id(self, wa_id: str) -> str | None:
        """The id of the customer's latest message on their WhatsApp conversation."""
        async with self.ctx.sessionmaker() as session:
            return (await session.scalars(
                select(Message.external_message_id).join(Ticket, Ticket.id == Message.ticket_id)
                .join(ChannelIdentity, ChannelIdentity.customer_id == Ticket.customer_id)
                .where(ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_id == wa_id,
                       Ticket.channel == CHANNEL, Ticket.thread_key == wa_id, Message.direction == Direction.inbound,
                       Message.channel == CHANNEL, Message.external_message_id.is_not(None))
                .order_by(Message.id.desc()).limit(1))).first()

    def _template_content(self, template: dict[str, Any]) -> dict[str, Any]:
        name, language, params = template.get("name"), template.get("language"), template.get("params", [])
        if not isinstance(name, str) or not isinstance(language, str) or not isinstance(params, list):
            raise PermanentSendError(f"not a template to send: {_dump(template)[:200]}")
        components = [{"type": "body", "parameters": [{"type": "text", "text": str(p)} for p in params]}] \
            if params else []
        return {"type": "template", "template": {"name": name, "language": {"code": language},
                                                 "components": components}}

    async def _record_part(self, outbox_id: int, part: int, message_id: str) -> None:
        """Which outbox row a part's id belongs to, for its delivery statuses (best effort: a part not recorded
        only has no state of its own)."""
        try:
            async with self.ctx.sessionmaker() as session, session.begin():
                session.add(OutboxPart(outbox_id=outbox_id, part=part, channel=CHANNEL,
                                       provider_message_id=message_id))
        except Exception as exc:
            log.warning("whatsapp part not recorded", extra={"outbox_id": outbox_id, "error": str(exc)[:200]})

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        to = envelope.recipient
        if not to.isdigit():
            raise PermanentSendError(f"not a WhatsApp phone number: {to!r}")
        if envelope.template is not None:
            contents = [self._template_content(envelope.template)]
        else:
            text = envelope.text
            if envelope.author_kind == "agent" and envelope.author_name:
                text = f"{envelope.author_name}:\n{text}"  # the business number speaks for everyone
            replies = envelope.quick_replies
            chunks = split_text(text, MAX_INTERACTIVE_BODY if replies else MAX_TEXT)
            label = translator(self.settings.language)("whatsapp.choose")
            contents = [{"type": "text", "text": {"body": chunk, "preview_url": False}} for chunk in chunks]
            if replies:
                contents[-1] = {"type": "interactive", "interactive": interactive(chunks[-1], replies, label)}
        senders: list[Callable[[], Awaitable[str]]] = []
        for content in contents:

            async def send_content(content: dict[str, Any] = content) -> str:
                return await self._send_message(to, content)

            senders.append(send_content)
        for attachment in envelope.attachments if envelope.template is None else []:

            async def send_file(attachment: dict[str, Any] = attachment) -> str:
                return await self._send_attachment(to, attachment)

            senders.append(send_file)
        if len(senders) > 1:  # each part's id is recorded, for its delivery statuses
            senders = [self._recorded(envelope.outbox_id, index, sender) for index, sender in enumerate(senders)]
        return await send_parts(senders, envelope, self._send_failure)

    def _recorded(self, outbox_id: int, index: int, sender: Callable[[], Awaitable[str]]
                  ) -> Callable[[], Awaitable[str]]:
        async def send_part() -> str:
            message_id = await sender()
            await self._record_part(outbox_id, index, message_id)
            return message_id

        return send_part

    def _send_failure(self, exc: Exception) -> Exception:
        """What a Graph API error means for the outbox: rate limits and outages are retried, refusals are final."""
        if isinstance(exc, GraphApiError) and not exc.retryable:
            self.health.details["last_refusal"] = str(exc)[:200]
            if exc.code in TEMPLATE_ERRORS:
                return PermanentSendError(f"WhatsApp refused the template: {TEMPLATE_ERRORS[exc.code]} ({exc})")
            if exc.code == WINDOW_CLOSED:
                return PermanentSendError(
                    f"outside the 24-hour customer service window: only an approved template may be sent ({exc})")
            return PermanentSendError(f"WhatsApp refused: {exc}")
        return exc


async def _retired_templates_task(_session: AsyncSession, _task: DueTask) -> None:
    """A `whatsapp.templates` task queued before the list was read by the adapter's job: done, never armed again."""


def retire_tasks(handlers: TaskHandlers) -> None:
    """Complete the due tasks of kinds this channel no longer uses (without a handler each would fail once, after
    rolling its batch back); registered whether or not the channel is enabled."""
    handlers.register(RETIRED_TEMPLATES_TASK, _retired_templates_task, max_attempts=1)
