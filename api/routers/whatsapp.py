"""The WhatsApp Cloud API webhook: the verification handshake (GET), then every POST checked by its signature."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Query, Request, Response

from api.deps import Agent, DbSession, app_state
from api.ingress import IngressRoute
from api.openapi import NOT_FOUND, error
from channels.whatsapp.adapter import CHANNEL, GraphApiError, Refused, WhatsappChannel
from core.errors import NotFoundError, PermissionDeniedError, ServiceUnavailableError
from core.provider_templates import service as template_service
from core.provider_templates.schemas import TemplateRead, TemplateRefreshed

router = APIRouter(prefix="/channels/whatsapp", tags=["channel: whatsapp"], route_class=IngressRoute)
log = logging.getLogger(__name__)


def _adapter(request: Request) -> WhatsappChannel:
    adapter = app_state(request).channels.get(WhatsappChannel.kind)
    if not isinstance(adapter, WhatsappChannel):
        raise NotFoundError("the WhatsApp channel is not enabled")
    return adapter


@router.get("/webhook", status_code=200, responses={
    200: {"description": "`hub.challenge`, echoed", "content": {"text/plain": {"schema": {"type": "string"}}}},
    403: {"description": "Wrong hub.mode or hub.verify_token"}, **NOT_FOUND})
async def verify(request: Request, mode: str | None = Query(default=None, alias="hub.mode", max_length=32),
                 token: str | None = Query(default=None, alias="hub.verify_token", max_length=256),
                 challenge: str | None = Query(default=None, alias="hub.challenge", max_length=256)) -> Response:
    """Meta's verification request when the webhook is configured: the challenge back to the right verify token."""
    try:
        answer = _adapter(request).verify(mode, token, challenge)
    except Refused as exc:
        raise PermissionDeniedError(str(exc)) from exc
    return Response(answer, media_type="text/plain")


@router.post("/webhook", status_code=200, responses={
    200: {"description": "The notification is committed or quarantined"},
    403: {"description": "Missing or wrong X-Hub-Signature-256"},
    503: {"description": "The notification could not be stored now: Meta resends it"},
    **NOT_FOUND, 413: error("The notification is over the size limit")})
async def webhook(request: Request) -> Response:
    """One webhook notification; 200 once committed or quarantined, 5xx makes Meta resend it."""
    adapter = _adapter(request)
    body = await request.body()
    try:
        await adapter.process_webhook(body, request.headers.get("x-hub-signature-256"))
    except Refused as exc:
        raise PermissionDeniedError(str(exc)) from exc
    except Exception as exc:
        # Only "not now" gets here (the database down): what fails because of what it carries is quarantined.
        adapter.health.error(f"webhook failed: {type(exc).__name__}: {exc}"[:300])
        log.warning("whatsapp webhook not stored; Meta will resend it",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        raise ServiceUnavailableError("the notification could not be stored now; retry later") from exc
    return Response("ok", media_type="text/plain")


@router.get("/templates", response_model=list[TemplateRead])
async def templates(session: DbSession, _user: Agent) -> list[TemplateRead]:
    """The approved templates an agent may send (the cache of the business account's list, by name)."""
    return [TemplateRead.model_validate(t) for t in await template_service.usable(session, CHANNEL)]


@router.post("/templates/refresh", response_model=TemplateRefreshed, responses={
    **NOT_FOUND, 503: error("The Graph API could not be asked (the reason is given)")})
async def refresh_templates(request: Request, session: DbSession, _user: Agent) -> TemplateRefreshed:
    """Read the business account's templates now (one was just approved) rather than at the next scheduled read."""
    adapter = _adapter(request)
    if adapter.settings.waba_id is None:
        raise NotFoundError("no WhatsApp Business Account id (waba_id) is configured")
    try:
        return TemplateRefreshed(templates=await adapter.refresh_templates(session))
    except (GraphApiError, httpx.HTTPError) as exc:
        raise ServiceUnavailableError(f"the templates could not be read: {str(exc)[:300]}") from exc
