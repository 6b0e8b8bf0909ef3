"""The generic REST channel: inbound via POST /channels/rest/messages, replies by webhook and a pull endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from channels import http
from channels.base import ChannelHealth, PermanentSendError
from channels.config import RestChannelSettings
from core.csat.service import is_survey
from core.outbox.schemas import OutboundEnvelope, QuickReply

SIGNATURE_HEADER = "X-Switchboard-Signature"
DELIVERY_HEADER = "X-Switchboard-Delivery"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def reply_type(quick_replies: Sequence[QuickReply] | Sequence[dict[str, Any]]) -> str:
    """`csat` for a satisfaction survey (its quick replies are `/csat 1` .. `/csat 5`: answer it with
    `POST /channels/rest/csat`), else `message`."""
    payloads = [q.payload if isinstance(q, QuickReply) else str(q.get("payload", "")) for q in quick_replies]
    return "csat" if is_survey(payloads) else "message"


class RestChannel:
    """Delivers replies to the integrating system's webhook (signed); without a webhook they wait to be pulled."""

    kind: ClassVar[str] = "rest"

    def __init__(self, settings: RestChannelSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.health = ChannelHealth()
        self._client = client
        self._own_client = client is None

    async def start(self) -> None:
        if self._client is None:
            self._client = http.client(timeout=self.settings.webhook_timeout_seconds)
        self.health.ok()
        self.health.details["webhook"] = bool(self.settings.webhook_url)

    async def stop(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
        self.health.state = "stopped"

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        provider_id = f"rest-out-{envelope.message_id}"
        if not self.settings.webhook_url:
            return provider_id  # kept for GET /channels/rest/replies
        if self._client is None:
            raise RuntimeError("REST channel is not started")
        body = json.dumps({
            "event": "message.outbound",
            "type": reply_type(envelope.quick_replies),
            "delivery_id": envelope.outbox_id,
            "message_id": envelope.message_id,
            "ticket_number": envelope.ticket_number,
            "recipient": envelope.recipient,
            "thread_id": envelope.thread_key,
            "author": envelope.author_kind,
            "text": envelope.text,
            "html": envelope.html,
            "attachments": envelope.attachments,
            "quick_replies": [q.model_dump() for q in envelope.quick_replies],
            "language": envelope.language,
            "created_at": envelope.created_at.isoformat() if envelope.created_at else None,
        }, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: str(envelope.outbox_id)}
        if self.settings.webhook_secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.settings.webhook_secret.get_secret_value(), body)
        try:
            response = await self._client.post(self.settings.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.health.error(f"webhook unreachable: {exc!r}")
            raise
        if response.status_code >= 400:
            reason = f"webhook answered {response.status_code}: {response.text[:200]}"
            self.health.error(reason)
            # The receiver says the request itself is wrong: retrying the same body cannot help.
            if 400 <= response.status_code < 500 and response.status_code not in (408, 409, 425, 429):
                raise PermanentSendError(reason)
            raise RuntimeError(reason)
        self.health.ok()
        return provider_id
