"""The generic REST channel: an integrating system posts customer messages and receives the replies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from api.deps import Cursor, DbSession, State, app_state, header_docs
from api.ingress import IngressRoute
from api.keys import check_api_key
from api.openapi import BODY, UNAUTHENTICATED, error
from api.state import AppState
from channels.rest import inbound
from channels.rest.schemas import RestMessageAccepted, RestMessageCreate, RestReplyPage
from core.apikeys.schemas import Scope
from core.apikeys.service import KeyInfo
from core.attachments.policy import AttachmentPolicy
from core.csat import service as csat
from core.csat.schemas import CsatRead, CsatSubmit
from core.errors import NotFoundError, ServiceUnavailableError
from core.tickets.models import parse_ticket_ref

log = logging.getLogger(__name__)
CHANNEL = "rest"
# The ingress routes check the key themselves (no dependency to document it): declared here for the router.
router = APIRouter(prefix="/channels/rest", tags=["channel: rest"], route_class=IngressRoute, responses={
    **UNAUTHENTICATED, 503: error("The channel is disabled, or the database is unavailable; retry later")})


async def _check_key(state: AppState, request: HTTPConnection, api_key: str | None) -> KeyInfo:
    """The key first, before the body is even read: an anonymous caller learns nothing about the fields.

    The environment's key (SWITCHBOARD_CHANNELS__REST__API_KEY) works as it always did; integration keys
    (core/apikeys) work when they carry the `rest_channel` scope.
    """
    if not state.settings.channels.rest.enabled:
        raise ServiceUnavailableError("the REST channel is disabled: set SWITCHBOARD_CHANNELS__REST__ENABLED")
    return await check_api_key(state, request, api_key, Scope.rest_channel)


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


@contextmanager
def _body_errors() -> Iterator[None]:
    """A body validated by hand (after the key check) fails as FastAPI's own body validation would: a 422 with
    each error's location under `body`."""
    try:
        yield
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None


INGRESS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong X-Api-Key (checked before the body)"},
    403: {"description": "The integration key lacks the rest_channel scope"},
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
    key = await _check_key(state, request, request.headers.get("x-api-key"))
    # Validated here, after the key: FastAPI would validate a declared body before anything else runs.
    with _body_errors():
        body = inbound.parse_message(await request.body())
    result = await state.ingest.ingest(inbound.to_inbound(
        body, AttachmentPolicy(max_bytes=state.settings.max_attachment_bytes),
        trusted=key.name in state.settings.channels.rest.trusted_keys))
    accepted = inbound.accepted(result)
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
    await _check_key(state, request, x_api_key)
    return await inbound.replies_page(session, after=after, recipient=recipient, limit=limit)


@router.post("/csat", response_model=CsatRead, status_code=201,
             responses={**BODY, **INGRESS_ERRORS,
                        404: {"description": "No such ticket on the REST channel"},
                        409: {"description": "The ticket was sent no survey (`no_survey`) or is rated already "
                                            "(`already_rated`)"}},
             openapi_extra={**header_docs(("X-Api-Key", "The REST channel's API key")),
                            "requestBody": {"required": True, "content": {"application/json": {
                                "schema": _inline_refs(CsatSubmit.model_json_schema())}}}})
async def submit_csat(request: Request, state: State, session: DbSession) -> CsatRead:
    """The customer's answer to a satisfaction survey (a reply of type `csat`): score 1-5, optional comment; once."""
    await _check_key(state, request, request.headers.get("x-api-key"))
    with _body_errors():  # after the key, as for messages
        body = CsatSubmit.model_validate_json(await request.body())
    ticket_id = parse_ticket_ref(body.ticket_number)
    if ticket_id is None:
        raise NotFoundError(f"{body.ticket_number!r} is not a ticket number")
    return await csat.submit(session, ticket_id, body.score, body.comment, CHANNEL, sent_on=CHANNEL,
                             low_score=state.settings.core.csat_low_score, clock=state.clock)
