"""The Telegram webhook: checks Telegram's secret token, then hands the update to the channel adapter."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request, Response

from api.deps import app_state, header_docs
from api.ingress import IngressRoute
from api.openapi import NOT_FOUND, error
from channels.telegram.adapter import TelegramChannel
from core.errors import NotFoundError, PermissionDeniedError, ServiceUnavailableError

router = APIRouter(prefix="/channels/telegram", tags=["channel: telegram"], route_class=IngressRoute)
log = logging.getLogger(__name__)


@router.post("/webhook", status_code=200, responses={403: {"description": "Wrong or missing secret token"},
                                                      503: {"description": "Not connected or database down: retried"},
                                                      **NOT_FOUND, 413: error("The update is over the size limit")},
             openapi_extra=header_docs(("X-Telegram-Bot-Api-Secret-Token", "The secret set with setWebhook")))
async def webhook(request: Request) -> Response:
    """One update from Telegram; 200 once it is committed or quarantined, 5xx makes Telegram redeliver it."""
    x_telegram_bot_api_secret_token = request.headers.get("x-telegram-bot-api-secret-token")
    adapter = app_state(request).channels.get(TelegramChannel.kind)
    if not isinstance(adapter, TelegramChannel) or adapter.settings.mode != "webhook":
        raise NotFoundError("the Telegram channel is not in webhook mode")
    secret = adapter.settings.webhook_secret
    if secret is None or x_telegram_bot_api_secret_token is None or not hmac.compare_digest(
        x_telegram_bot_api_secret_token.encode(), secret.get_secret_value().encode()
    ):
        raise PermissionDeniedError("missing or wrong X-Telegram-Bot-Api-Secret-Token")
    if not adapter.ready.is_set():
        raise ServiceUnavailableError("the Telegram channel is still connecting")
    body = await request.body()
    try:
        await adapter.process_webhook(body)
    except Exception as exc:
        # Only "not now" gets here (the database down, the Bot API unreachable for a file): an update that fails
        # because of what it carries was quarantined by the adapter and is acknowledged.
        adapter.health.error(f"update failed: {type(exc).__name__}: {exc}"[:300])
        log.warning("telegram update not stored; Telegram will redeliver it",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        raise ServiceUnavailableError("the update could not be stored now; retry later") from exc
    return Response(status_code=200)
