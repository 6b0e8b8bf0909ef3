"""The generic REST channel: an integrating system posts customer messages and receives the replies."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from starlette.requests import HTTPConnection

from api.deps import Cursor, DbSession, State, app_state, header_docs
from api.openapi import BODY, UNAUTHENTICATED, error
from api.state import AppState
from core.attachments.policy import AttachmentPolicy, screen
from core.errors import AuthenticationError, ServiceUnavailableError, TooManyRequestsError, ValidationFailedError
from core.ingest.schemas import AttachmentInfo, InboundMessage, IngestResult, SenderInfo, unstorable_reason
from core.outbox.models import OutboxMessage, OutboxStatus
from core.tickets.models import format_ticket_number

log = logging.getLogger(__name__)
# The ingress routes check the key themselves (no dependency to document it): declared here for the router.
router = APIRouter(prefix="/channels/rest", tags=["channel: rest"], responses={
    **UNAUTHENTICATED, 503: error("The channel is disabled, or the database is unavailable; retry later")})
CHANNEL = "rest"


class RestSender(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{3,31}$")


class RestAttachment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: StrictInt | None = Field(default=None, ge=0)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")


class RestMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_message_id: str = Field(min_length=1, max_length=512)
    sender: RestSender
    text: str = Field(default="", max_length=100_000)
    attachments: list[RestAttachment] = Field(default_factory=list, max_length=20)
    thread_id: str | None = Field(default=None, max_length=320,
                                  description="Continues the open ticket of this thread; default: the sender")
    language: str | None = Field(default=None, pattern="^(ru|en)$")

    @field_validator("text")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _storable(self) -> RestMessageCreate:
        # NUL in an id or a name fails PostgreSQL's text (and lone surrogates UTF-8) at insert: a 422 here instead.
        reason = unstorable_reason(self.model_dump())
        if reason is not None:
            raise ValueError(f"the message cannot be stored: {reason}")
        return self


class RestMessageAccepted(BaseModel):
    ticket_number: str
    ticket_id: int
    message_id: int
    created: bool
    action: str
    reply_message_ids: list[int]


class RestReply(BaseModel):
    cursor: int
    message_id: int
    ticket_number: str
    recipient: str
    thread_id: str | None
    author: str
    text: str
    html: str | None
    attachments: list[dict[str, Any]]
    quick_replies: list[dict[str, Any]]
    created_at: datetime


class RestReplyPage(BaseModel):
    items: list[RestReply]
    next_cursor: int


def _check_key(state: AppState, request: HTTPConnection, api_key: str | None) -> None:
    """The key first, before the body is even read: an anonymous caller learns nothing about the fields.

    Wrong keys are counted per client address (a brute force must wait longer and longer: 429, and while it
    waits even the right key is refused, or the answer would tell it apart); the right key is held to its
    request rate. Both in memory, per process.
    """
    settings = state.settings.channels.rest
    if not settings.enabled or settings.api_key is None:
        raise ServiceUnavailableError("the REST channel is disabled: set SWITCHBOARD_CHANNELS__REST__API_KEY")
    limits = state.limits
    address = limits.proxies.client_address(request)
    wait = limits.rest_bad_keys.blocked(address)
    if wait > 0:
        raise TooManyRequestsError("too many wrong X-Api-Key tries from your address; wait before trying again",
                                   wait, reason="bad_api_keys")
    if api_key is None:
        raise AuthenticationError("missing or wrong X-Api-Key")
    if not hmac.compare_digest(api_key.encode(), settings.api_key.get_secret_value().encode()):
        wait = limits.rest_bad_keys.failure(address)
        if wait > 0:  # at most one line per wait: tries while waiting are refused uncounted
            log.warning("wrong X-Api-Key tries: the address must wait",
                        extra={"address": address, "wait_seconds": wait})
        raise AuthenticationError("missing or wrong X-Api-Key")
    limits.rest_bad_keys.success(address)
    wait = limits.rest_keys.take(api_key)
    if wait > 0:
        raise TooManyRequestsError("this API key is over its request rate; slow down", wait, reason="key_rate")


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place, to stand alone inside an OpenAPI operation."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    result: dict[str, Any] = resolve(schema)
    return result


INGRESS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong X-Api-Key (checked before the body)"},
    422: {"description": "The body does not match RestMessageCreate (field details)"},
    429: {"description": "Too many wrong keys from this address, or the key is over its rate; see Retry-After"},
    503: {"description": "The REST channel is disabled"},
}


@router.post("/messages", response_model=RestMessageAccepted, status_code=201,
             responses={200: {"description": "A duplicate submission: the original result",
                              "model": RestMessageAccepted}, **BODY, **INGRESS_ERRORS},
             openapi_extra={**header_docs(("X-Api-Key", "The REST channel's API key")),
                            "requestBody": {"required": True, "content": {"application/json": {
                                "schema": _inline_refs(RestMessageCreate.model_json_schema())}}}})
async def post_message(request: Request) -> Response:
    """Submit one customer message; resubmitting the same external_message_id returns the original result."""
    state = app_state(request)
    _check_key(state, request, request.headers.get("x-api-key"))
    # Validated here, after the key: FastAPI would validate a declared body before anything else runs.
    try:
        body = RestMessageCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None
    if not body.text.strip() and not body.attachments:
        raise ValidationFailedError("a message needs text or at least one attachment")
    # The attachment policy of every channel: a refused file leaves the message in, listed with the reason.
    attachments, rejected = screen([AttachmentInfo(**a.model_dump()) for a in body.attachments],
                                   AttachmentPolicy(max_bytes=state.settings.max_attachment_bytes))
    inbound = InboundMessage(
        channel=CHANNEL, external_message_id=body.external_message_id,
        sender=SenderInfo(external_id=body.sender.external_id, name=body.sender.name, email=body.sender.email,
                          phone=body.sender.phone),
        text=body.text,
        attachments=tuple(attachments),
        thread_key=body.thread_id or body.sender.external_id,
        language_hint=body.language,
        extra={"rejected_attachments": rejected} if rejected else {},
    )
    result: IngestResult = await state.ingest.ingest(inbound)
    accepted = RestMessageAccepted(ticket_number=result.ticket_number, ticket_id=result.ticket_id,
                                   message_id=result.message_id, created=result.created, action=result.action,
                                   reply_message_ids=result.reply_message_ids)
    # The hot path of the channel: serialised once here instead of FastAPI's dump -> revalidate -> encode.
    return Response(accepted.model_dump_json(), status_code=201 if result.created else 200,
                    media_type="application/json")


@router.get("/replies", response_model=RestReplyPage, responses={k: v for k, v in INGRESS_ERRORS.items() if k != 422})
async def pull_replies(
    request: Request, state: State, session: DbSession, x_api_key: Annotated[str | None, Header()] = None,
    after: Cursor = 0,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RestReplyPage:
    """Replies delivered to the REST channel, oldest first, for integrations that poll instead of a webhook."""
    _check_key(state, request, x_api_key)
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.channel == CHANNEL, OutboxMessage.status == OutboxStatus.sent, OutboxMessage.id > after)
        .options(joinedload(OutboxMessage.message))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if recipient is not None:
        stmt = stmt.where(OutboxMessage.recipient == recipient)
    rows = (await session.scalars(stmt)).all()
    items = [
        RestReply(cursor=r.id, message_id=r.message_id, ticket_number=format_ticket_number(r.ticket_id),
                  recipient=r.recipient, thread_id=r.payload.get("thread_key"), author=r.message.author_kind.value,
                  text=r.message.text, html=r.message.html, attachments=r.message.attachments,
                  quick_replies=r.payload.get("quick_replies", []), created_at=r.message.created_at)
        for r in rows
    ]
    return RestReplyPage(items=items, next_cursor=items[-1].cursor if items else after)
