"""The VK channel: community messages through the Callback API (in) and messages.send (out), plain httpx.

Decisions (see also ARCHITECTURE.md and the VK records of docs/decisions.md):
- No client library: vk_api is synchronous (requests), vkbottle is a bot framework with its own event loop,
  router and models; the channel needs five methods (groups.getById, messages.send, docs.getMessagesUploadServer,
  docs.save and a file upload), each a form POST answering `{"response": ...}` or `{"error": {...}}`.
- Authentication: every event carries the Callback API secret in its body; an event without the right one is
  refused (403) before anything is stored. A body that is not JSON is quarantined only when the right secret can
  still be found in its bytes, so strangers cannot fill the quarantine.
- Idempotency: a message is keyed `<peer id>:<message id>`, an edit `edit:<peer>:<message>:<update time>`; VK
  resends an event (same `event_id`) until it gets "ok", and the ingest pipeline makes the resend a no-op. Recent
  event ids are also remembered in memory, so a resend costs no database round trip.
- Outbound: `random_id` is derived from the outbox id and the part's index, so a retry after a lost answer is
  de-duplicated by VK itself. Errors 6/9/29 (too many requests, flood control, rate limit) are retried by the
  outbox with its backoff; 900/901/902 (blacklisted, no permission, privacy settings) fail for good.
- A photo or document that cannot be downloaded (gone, refused host, over the limit) keeps the message: the file
  is listed with the reason, as for e-mail, and VK is not asked to resend an event that would fail the same way.
- `message_deny` withdraws the customer's consent to unasked notices (logged with source "vk"); `message_allow`
  restores it only when VK was what withdrew it, never over a withdrawal made elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from channels import http
from channels.base import (
    ChannelContext,
    ChannelHealth,
    PermanentSendError,
    RecentIds,
    download_files,
    is_json_int,
    send_parts,
)
from channels.telegram.adapter import split_text
from channels.vk.settings import VkChannelSettings
from core.attachments.policy import AttachmentPolicy, safe_filename
from core.consent import repository as consent_repository
from core.consent import service as consent_service
from core.consent.models import ConsentKind
from core.consent.schemas import PreferencesUpdate
from core.csat.service import is_survey_payload, survey_score
from core.customers import service as customer_service
from core.db.outage import is_database_outage
from core.errors import ConflictError, NotFoundError
from core.i18n import translator
from core.ingest.schemas import AttachmentInfo, InboundMessage, SenderInfo
from core.jobs import Backoff, Job, JobContext
from core.outbox.schemas import OutboundEnvelope, QuickReply

log = logging.getLogger(__name__)

CHANNEL = "vk"
MAX_TEXT = 4096
MAX_LABEL = 40  # VK cuts a button's label at 40 characters
MAX_PAYLOAD = 255  # and refuses a payload longer than 255
CONNECT_JOB = "vk:connect"
RATE_LIMIT_ERRORS = frozenset({6, 9, 29})  # too many requests per second, flood control, rate limit reached
# 900 blacklisted, 901 no permission to write first, 902 privacy settings, 7 no permission, 100 bad parameter,
# 914 message too long, 921 cannot forward: the same request would fail the same way.
PERMANENT_ERRORS = frozenset({7, 100, 900, 901, 902, 914, 921})
MESSAGE_EVENTS = frozenset({"message_new", "message_edit"})
CONSENT_EVENTS = frozenset({"message_allow", "message_deny"})
_SECRET_IN_BYTES = re.compile(rb'"secret"\s*:\s*"([^"\\]{1,200})"')


class VkApiError(Exception):
    """VK answered a method with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"VK {method} failed: error {code}: {message}"[:500])
        self.method = method
        self.code = code


class VkRateLimited(VkApiError):
    """VK asked to slow down (errors 6, 9, 29); the outbox retries later with its backoff."""


class UnusableEvent(Exception):
    """An authenticated event that cannot become a message (no peer, wrong types): quarantined."""


class Refused(Exception):
    """The request is not from the configured community's Callback API (wrong secret or group)."""


def random_id(outbox_id: int, part: int) -> int:
    """A positive int32 stable per outbox message and part: VK drops a second send with the same one."""
    digest = hashlib.blake2b(f"switchboard:{outbox_id}:{part}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1) + 1


def keyboard(quick_replies: list[QuickReply]) -> str | None:
    """Quick replies as an inline keyboard: CSAT scores side by side in one row, every other button on its own."""
    if not quick_replies:
        return None

    def button(reply: QuickReply) -> dict[str, Any]:
        payload = json.dumps({"command": reply.payload}, ensure_ascii=False)
        if len(payload) > MAX_PAYLOAD:
            payload = json.dumps({"command": reply.payload[:200]}, ensure_ascii=False)[:MAX_PAYLOAD]
        return {"action": {"type": "text", "label": reply.title[:MAX_LABEL], "payload": payload},
                "color": "secondary" if is_survey_payload(reply.payload) else "primary"}

    csat = [button(q) for q in quick_replies if is_survey_payload(q.payload)]
    rows = [[button(q)] for q in quick_replies if not is_survey_payload(q.payload)]
    return json.dumps({"inline": True, "buttons": ([csat] if csat else []) + rows}, ensure_ascii=False)


def button_command(payload: Any) -> str | None:
    """The command of a pressed button (`{"command": "..."}` as a JSON string), if the message came from one."""
    if not isinstance(payload, str) or not payload:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    command = data.get("command") if isinstance(data, dict) else None
    return command.strip() if isinstance(command, str) and command.strip() else None


def _dump(raw: Any) -> str:
    try:
        return json.dumps(raw, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return "<not serialisable>"


def _int(value: Any, what: str) -> int:
    if not is_json_int(value):
        raise UnusableEvent(f"{what} is not an integer")
    return value


class VkChannel:
    """One community; `process_callback` is fed by the Callback API route."""

    kind: ClassVar[str] = CHANNEL

    def __init__(self, settings: VkChannelSettings, ctx: ChannelContext) -> None:
        if settings.access_token is None or settings.group_id is None or settings.secret is None:
            raise ValueError("the VK channel needs an access token, a group id and a secret")
        self.settings = settings
        self.ctx = ctx
        self.health = ChannelHealth()
        self.health.details["group_id"] = settings.group_id
        self.ready = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._recent = RecentIds()  # event ids already handled (fast path)

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the VK channel is not started")
        return self._client

    async def start(self) -> None:
        self.health.state = "starting"
        self._client = http.client(timeout=self.settings.request_timeout_seconds, follow_redirects=False)
        self.ctx.jobs.start(Job(CONNECT_JOB, body=self._connect, backoff=Backoff(
            initial=0.5, maximum=max(0.5, self.settings.retry_backoff_max_seconds))))

    async def stop(self) -> None:
        await self.ctx.jobs.stop([CONNECT_JOB])
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self.ready.clear()
        self.health.state = "stopped"

    async def _connect(self, ctx: JobContext) -> None:
        """Check the token against the community (retried by the job with backoff); events are taken meanwhile."""
        try:
            groups = await self.call("groups.getById", group_id=self.settings.group_id)
        except Exception as exc:
            self.health.error(f"connect failed: {type(exc).__name__}: {exc}")
            log.warning("vk connect failed", extra={"error": str(exc)[:200]})
            raise
        group = (groups.get("groups") or [{}])[0] if isinstance(groups, dict) else (groups or [{}])[0]
        if isinstance(group, dict) and group.get("screen_name"):
            self.health.details["community"] = group["screen_name"]
        self.ready.set()
        self.health.ok()

    async def call(self, method: str, **params: Any) -> Any:
        """One VK API method (form POST, the token in the body, never in the URL); its `response` or VkApiError."""
        token = self.settings.access_token
        if token is None:
            raise RuntimeError("the VK channel needs an access token")
        form = {k: str(v) for k, v in params.items() if v is not None}
        form.update(access_token=token.get_secret_value(), v=self.settings.api_version)
        response = await self.client.post(f"{self.settings.api_base_url.rstrip('/')}/{method}", data=form)
        response.raise_for_status()  # a proxy in trouble: retried
        data = response.json()
        if not isinstance(data, dict):
            raise VkApiError(method, 0, "not a JSON object")
        error = data.get("error")
        if isinstance(error, dict):
            code = error.get("error_code")
            code = code if isinstance(code, int) else 0
            message = str(error.get("error_msg") or "")
            cls = VkRateLimited if code in RATE_LIMIT_ERRORS else VkApiError
            raise cls(method, code, message)
        if "response" not in data:
            raise VkApiError(method, 0, "no response in the answer")
        return data["response"]

    # -- inbound ---------------------------------------------------------------------------------------

    def _secret_matches(self, given: Any) -> bool:
        secret = self.settings.secret
        return secret is not None and isinstance(given, str) and hmac.compare_digest(
            given.encode(), secret.get_secret_value().encode())

    async def process_callback(self, body: bytes) -> str:
        """One Callback API request; the text to answer VK with.

        Raises:
            Refused: not the community's Callback API (wrong secret or group): nothing stored.
            Exception: anything worth a redelivery (the database down); VK resends on a non-"ok" answer.
        """
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's json can go
            match = _SECRET_IN_BYTES.search(body)
            if match is None or not self._secret_matches(match.group(1).decode("utf-8", "replace")):
                raise Refused("not JSON, and no valid secret in it") from exc
            await self.ctx.ingest.quarantine(CHANNEL, f"invalid JSON: {type(exc).__name__}: {str(exc)[:200]}",
                                             body, "application/json")
            self.health.received()
            return "ok"
        if not isinstance(raw, dict):
            raise Refused("not a Callback API event (not a JSON object)")
        if raw.get("group_id") != self.settings.group_id:
            raise Refused("an event of another community (group_id)")
        if raw.get("type") == "confirmation":
            return self.settings.confirmation_code or ""
        if not self._secret_matches(raw.get("secret")):
            raise Refused("missing or wrong secret")
        await self.process_event(raw)
        return "ok"

    async def process_event(self, raw: dict[str, Any]) -> None:
        """Handle one authenticated event; one that cannot be used is quarantined with the reason, never retried
        forever. Raises only what is worth a redelivery (an outage)."""
        event_id = raw.get("event_id")
        event_key = event_id if isinstance(event_id, str) and event_id else None
        if event_key is not None and event_key in self._recent:
            return
        kind = raw.get("type")
        try:
            if kind in MESSAGE_EVENTS:
                await self._on_message(raw, edited=kind == "message_edit")
            elif kind in CONSENT_EVENTS:
                await self._on_consent(raw, allowed=kind == "message_allow")
            else:
                log.debug("vk event ignored", extra={"type": str(kind)[:50]})
        except Exception as exc:
            if is_database_outage(exc) or isinstance(exc, httpx.TransportError | OSError):
                raise
            reason = f"unusable event: {exc}" if isinstance(exc, UnusableEvent) else \
                f"event failed: {type(exc).__name__}: {exc}"
            if not isinstance(exc, UnusableEvent):
                log.exception("vk event failed; quarantined", extra={"event_id": str(event_id)[:64]})
            await self.ctx.ingest.quarantine(CHANNEL, reason[:1000], _dump(raw), "application/json")
        if event_key is not None:
            self._recent.add(event_key)
        self.health.received()

    @staticmethod
    def _message_of(raw: dict[str, Any], *, edited: bool) -> dict[str, Any]:
        obj = raw.get("object")
        if not isinstance(obj, dict):
            raise UnusableEvent("no object")
        # message_new wraps the message ({"message": ..., "client_info": ...}); message_edit is the message.
        message = obj if edited else obj.get("message")
        if not isinstance(message, dict):
            raise UnusableEvent("no message in the object")
        return message

    @staticmethod
    def _sender(peer_id: int) -> SenderInfo:
        return SenderInfo(external_id=str(peer_id))

    async def _on_message(self, raw: dict[str, Any], *, edited: bool) -> None:
        message = self._message_of(raw, edited=edited)
        peer_id = _int(message.get("peer_id"), "peer_id")
        message_id = _int(message.get("id") or message.get("conversation_message_id"), "message id")
        if _int(message.get("from_id", peer_id), "from_id") < 0:
            return  # written by a community (this one's own outgoing messages echo here): not an appeal
        text = message.get("text", "")
        if not isinstance(text, str):
            raise UnusableEvent("text is not a string")
        attachments = message.get("attachments") or []
        if not isinstance(attachments, list):
            raise UnusableEvent("attachments is not a list")
        if edited:
            stamp = message.get("update_time")
            stamp = stamp if is_json_int(stamp) else 0
            external_id = f"edit:{peer_id}:{message_id}:{stamp}"
        else:
            external_id = f"{peer_id}:{message_id}"
        files = [f for f in (self._file_of(a) for a in attachments) if f is not None]
        command = None if edited else button_command(message.get("payload"))
        if not text.strip() and not files:
            if not edited:
                await self._reply(peer_id, translator(self.settings.language)("vk.unsupported"))
            return
        if files and await self.ctx.ingest.find_existing(CHANNEL, external_id) is not None:
            return  # a redelivery: do not download again
        stored, rejected = await download_files(files, self._download)
        extra: dict[str, Any] = {"vk": {"peer_id": peer_id, "message_id": message_id,
                                        **({"event_id": raw["event_id"]} if isinstance(raw.get("event_id"), str)
                                           else {})}}
        if edited:
            extra["edited"] = True
        if rejected:
            extra["rejected_attachments"] = rejected
        if command is not None:
            extra["quick_reply"] = command
            score = survey_score(command)
            if score is not None:
                extra["csat"] = score
        date = message.get("update_time" if edited else "date")
        received = datetime.fromtimestamp(date, UTC) if isinstance(date, int) and 0 < date < 2**33 else None
        inbound = InboundMessage(
            channel=CHANNEL, external_message_id=external_id, sender=self._sender(peer_id), text=text,
            attachments=tuple(stored), thread_key=str(peer_id), extra=extra,
            **({"received_at": received} if received is not None else {}),
        )
        await self.ctx.ingest.ingest(inbound)

    @staticmethod
    def _file_of(attachment: Any) -> tuple[str, str, str, int | None] | None:
        """(url, name, content type, declared size) of a photo or document; None for what is not a file we take."""
        if not isinstance(attachment, dict):
            raise UnusableEvent("an attachment is not an object")
        kind = attachment.get("type")
        if kind == "photo":
            photo = attachment.get("photo")
            if not isinstance(photo, dict):
                raise UnusableEvent("a photo without its object")
            sizes = photo.get("sizes")
            if not isinstance(sizes, list) or not sizes:
                raise UnusableEvent("a photo without sizes")
            usable = [s for s in sizes if isinstance(s, dict) and isinstance(s.get("url"), str)]
            if not usable:
                raise UnusableEvent("a photo without a url")
            largest = max(usable, key=lambda s: (s.get("width") or 0) * (s.get("height") or 0)
                          if isinstance(s.get("width"), int) and isinstance(s.get("height"), int) else 0)
            return largest["url"], f"photo-{photo.get('owner_id')}_{photo.get('id')}.jpg", "image/jpeg", None
        if kind == "doc":
            doc = attachment.get("doc")
            if not isinstance(doc, dict) or not isinstance(doc.get("url"), str):
                raise UnusableEvent("a document without a url")
            title = doc.get("title") if isinstance(doc.get("title"), str) else None
            ext = doc.get("ext") if isinstance(doc.get("ext"), str) else ""
            name = title or f"document-{doc.get('owner_id')}_{doc.get('id')}.{ext}"
            size = doc.get("size") if is_json_int(doc.get("size")) else None
            return doc["url"], name, "application/octet-stream", size
        return None  # stickers, audio messages, walls, links: the text (if any) is the appeal

    def _host_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            return False
        hosts = self.settings.media_hosts
        host = parts.hostname.lower()
        return not hosts or any(host == h or host.endswith(f".{h}") for h in hosts)

    async def _download(self, url: str, filename: str, content_type: str, size: int | None,
                        index: int) -> tuple[AttachmentInfo | None, dict[str, Any] | None]:
        """(the stored file, None) or (None, the refusal to record); what the policy refuses by name, type or
        declared size, or what lives on a host VK does not serve files from, is never downloaded."""
        name = safe_filename(filename, content_type)
        policy = AttachmentPolicy(max_bytes=self.settings.max_download_bytes)
        verdict = policy.check(name, content_type, size, index=index)
        if verdict.refusal is None and not self._host_allowed(url):
            return None, {"filename": name, "content_type": verdict.content_type, "size": size,
                          "reason": "the file is not on a VK media host"}
        if verdict.refusal is None:
            try:
                data = await self._fetch(url, self.settings.max_download_bytes)
            except (httpx.HTTPError, ValueError) as exc:
                log.info("vk attachment download failed", extra={"filename": name, "error": str(exc)[:200]})
                return None, {"filename": name, "content_type": verdict.content_type, "size": size,
                              "reason": f"the file could not be downloaded: {str(exc)[:200]}"}
            size = len(data)
            verdict = policy.check(name, content_type, size, index=index, data=data)
            if verdict.refusal is None:
                return await self.ctx.files.save(name, verdict.content_type, data, namespace=CHANNEL), None
        refusal = verdict.refusal
        log.info("vk attachment refused", extra={"filename": name, "reason": refusal.reason})
        return None, refusal.record(name, verdict.content_type, size)

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

    async def _on_consent(self, raw: dict[str, Any], *, allowed: bool) -> None:
        obj = raw.get("object")
        user_id = _int(obj.get("user_id") if isinstance(obj, dict) else None, "user_id")
        note = "VK: the customer allowed messages from the community" if allowed else \
            "VK: the customer denied messages from the community"
        async with self.ctx.sessionmaker() as session, session.begin():
            identity = await customer_service.resolve_identity(session, CHANNEL, self._sender(user_id))
            customer_id = identity.customer_id
            if allowed:
                # Restore only what VK withdrew: a withdrawal made in the console or by the API stands.
                log_rows = await consent_repository.log_of(session, customer_id, limit=20)
                last = next((row for row in log_rows if row.kind == ConsentKind.notices), None)
                if last is None or last.granted or last.source != CHANNEL:
                    return
            try:
                await consent_service.update(
                    session, customer_id, PreferencesUpdate(consent_notices=allowed, note=note),
                    source=CHANNEL, actor=None, actor_label="customer", now=self.ctx.clock.now())
            except (ConflictError, NotFoundError):
                return  # an erased customer: nothing of theirs is kept

    async def _reply(self, peer_id: int, text: str) -> None:
        """A direct answer outside the outbox (no ticket behind it); best effort."""
        try:
            await self.call("messages.send", peer_id=peer_id, message=text,
                            random_id=random_id(-peer_id, int(self.ctx.clock.now().timestamp())))
        except Exception as exc:
            log.info("vk direct reply failed", extra={"peer_id": peer_id, "error": str(exc)[:200]})

    # -- outbound --------------------------------------------------------------------------------------

    async def _upload_document(self, peer_id: int, name: str, data: bytes) -> str:
        """A file from the attachment store as a VK document of the conversation: `doc<owner>_<id>`."""
        server = await self.call("docs.getMessagesUploadServer", type="doc", peer_id=peer_id)
        upload_url = server.get("upload_url") if isinstance(server, dict) else None
        if not isinstance(upload_url, str):
            raise VkApiError("docs.getMessagesUploadServer", 0, "no upload_url")
        response = await self.client.post(upload_url, files={"file": (name, data)})
        response.raise_for_status()
        uploaded = response.json()
        if not isinstance(uploaded, dict) or not isinstance(uploaded.get("file"), str):
            raise VkApiError("upload", 0, str(uploaded.get("error") if isinstance(uploaded, dict) else uploaded))
        saved = await self.call("docs.save", file=uploaded["file"], title=name)
        doc = saved.get("doc") if isinstance(saved, dict) else None
        if not isinstance(doc, dict):
            raise VkApiError("docs.save", 0, "no doc in the answer")
        return f"doc{doc['owner_id']}_{doc['id']}"

    async def _send_attachment(self, peer_id: int, attachment: dict[str, Any], rid: int) -> str | None:
        key, url = attachment.get("storage_key"), attachment.get("url")
        if key:
            try:
                data = await self.ctx.files.read(str(key))
            except NotFoundError as exc:
                raise PermanentSendError(f"attachment {key!r} is not in the attachment store") from exc
            name = safe_filename(str(attachment.get("filename") or str(key).rsplit("/", 1)[-1]))
            doc = await self._upload_document(peer_id, name, data)
            return str(await self.call("messages.send", peer_id=peer_id, random_id=rid, attachment=doc))
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            name = str(attachment.get("filename") or "")
            text = f"{name}\n{url}" if name else url
            return str(await self.call("messages.send", peer_id=peer_id, random_id=rid, message=text))
        return None

    async def send_typing(self, recipient: str) -> None:
        """Show "typing…" in the customer's dialog (an agent is writing a reply; VK shows it for about 10 s)."""
        try:
            peer_id = int(recipient)
        except ValueError as exc:
            raise PermanentSendError(f"not a VK peer id: {recipient!r}") from exc
        await self.call("messages.setActivity", peer_id=peer_id, type="typing", group_id=self.settings.group_id)

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        try:
            peer_id = int(envelope.recipient)
        except ValueError as exc:
            raise PermanentSendError(f"not a VK peer id: {envelope.recipient!r}") from exc
        text = envelope.text
        if envelope.author_kind == "agent" and envelope.author_name:
            # The community speaks for everyone: the agent's name heads their reply.
            text = f"{envelope.author_name}:\n{text}"
        chunks = split_text(text, MAX_TEXT)
        buttons = keyboard(envelope.quick_replies)
        parts: list[Callable[[], Awaitable[str | None]]] = []
        for index, chunk in enumerate(chunks):
            markup = buttons if index == len(chunks) - 1 else None

            async def send_text(chunk: str = chunk, markup: str | None = markup, index: int = index) -> str:
                return str(await self.call("messages.send", peer_id=peer_id, message=chunk, keyboard=markup,
                                           random_id=random_id(envelope.outbox_id, index)))

            parts.append(send_text)
        for offset, attachment in enumerate(envelope.attachments):

            async def send_file(attachment: dict[str, Any] = attachment, index: int = len(chunks) + offset) -> \
                    str | None:
                return await self._send_attachment(peer_id, attachment, random_id(envelope.outbox_id, index))

            parts.append(send_file)
        return await send_parts(parts, envelope, self._send_failure)

    def _send_failure(self, exc: Exception) -> Exception:
        """What a VK API error means for the outbox: rate limits and outages are retried, refusals are final."""
        if isinstance(exc, VkApiError) and exc.code in PERMANENT_ERRORS:
            self.health.details["last_refusal"] = str(exc)[:200]
            return PermanentSendError(f"VK refused: {exc}")
        return exc
