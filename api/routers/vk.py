"""The VK Callback API: the confirmation handshake, then every event checked by its secret and handed to the adapter."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from api.deps import app_state
from api.ingress import IngressRoute
from api.openapi import NOT_FOUND, error
from channels.vk.adapter import Refused, VkChannel
from core.errors import NotFoundError, PermissionDeniedError, ServiceUnavailableError

router = APIRouter(prefix="/channels/vk", tags=["channel: vk"], route_class=IngressRoute)
log = logging.getLogger(__name__)


@router.post("/callback", status_code=200, responses={
    200: {"description": "`ok`, or the confirmation string to VK's confirmation request",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    403: {"description": "Wrong or missing secret, or another community's event"},
    503: {"description": "The event could not be stored now: VK resends it"},
    **NOT_FOUND, 413: error("The event is over the size limit")})
async def callback(request: Request) -> Response:
    """One Callback API request; `ok` once the event is committed or quarantined, 5xx makes VK resend it."""
    adapter = app_state(request).channels.get(VkChannel.kind)
    if not isinstance(adapter, VkChannel):
        raise NotFoundError("the VK channel is not enabled")
    body = await request.body()
    try:
        answer = await adapter.process_callback(body)
    except Refused as exc:
        raise PermissionDeniedError(str(exc)) from exc
    except Exception as exc:
        # Only "not now" gets here (the database down): an event that fails because of what it carries was
        # quarantined by the adapter and is acknowledged.
        adapter.health.error(f"event failed: {type(exc).__name__}: {exc}"[:300])
        log.warning("vk event not stored; VK will resend it", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        raise ServiceUnavailableError("the event could not be stored now; retry later") from exc
    return Response(answer, media_type="text/plain")
