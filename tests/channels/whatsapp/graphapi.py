"""A local stand-in of the WhatsApp Cloud API endpoints the channel uses (Graph API), over real HTTP, and the
webhook notifications Meta sends (signed with the app secret)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.net import free_port
from tests.support.server import serve

TOKEN = "EAAG-test-system-user-token"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "wa-app-secret"
VERIFY_TOKEN = "wa-verify-token"
VERSION = "v21.0"
WABA_ID = "102290129340398"


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notification(value: dict[str, Any], phone_number_id: str = PHONE_NUMBER_ID) -> dict[str, Any]:
    """A webhook notification around one `value` (messages or statuses) of the business number."""
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            **value}}]}]}


def text_message(wa_id: str, message_id: str, text: str, name: str = "Kerry Fisher",
                 timestamp: str = "1764500000") -> dict[str, Any]:
    return notification({
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": message_id, "timestamp": timestamp, "type": "text",
                      "text": {"body": text}}]})


def button_reply(wa_id: str, message_id: str, reply_id: str, title: str) -> dict[str, Any]:
    return notification({
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": message_id, "timestamp": "1764500100", "type": "interactive",
                      "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}}]})


def media_message(wa_id: str, message_id: str, kind: str, media: dict[str, Any]) -> dict[str, Any]:
    return notification({
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": message_id, "timestamp": "1764500400", "type": kind, kind: media}]})


def status(message_id: str, state: str, wa_id: str, timestamp: str = "1764500200",
           errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": message_id, "status": state, "timestamp": timestamp, "recipient_id": wa_id}
    if errors is not None:
        item["errors"] = errors
    return notification({"statuses": [item]})


@dataclass
class FakeGraphAPI:
    port: int = 0
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (method, path, body)
    sent: list[dict[str, Any]] = field(default_factory=list)  # accepted /messages bodies (with "_id")
    media: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # id -> (filename, bytes, type)
    inbound_media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media id -> (bytes, type)
    media_url_host: str = ""  # where media URLs point (this stand-in unless set)
    downloads: list[str] = field(default_factory=list)  # media files asked for, served or not
    window_closed: set[str] = field(default_factory=set)  # recipients who last wrote over 24 hours ago
    rate_limit_next: int = 0  # /messages answers HTTP 429 (error 130429) this many times
    server_error_next: int = 0  # /messages answers HTTP 500 this many times
    # The business account's templates as message_templates lists them, served `page_size` a page.
    templates: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    templates_error_next: int = 0  # message_templates answers HTTP 500 this many times
    read_marks: list[dict[str, Any]] = field(default_factory=list)  # status=read bodies (typing indicators)
    _next_id: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def texts(self, to: str | None = None) -> list[str]:
        out = []
        for body in self.sent:
            if to is not None and body["to"] != to:
                continue
            if body["type"] == "text":
                out.append(body["text"]["body"])
            elif body["type"] == "interactive":
                out.append(body["interactive"]["body"]["text"])
        return out

    @staticmethod
    def _error(status: int, code: int, message: str, details: str | None = None) -> JSONResponse:
        error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                                 "fbtrace_id": "AbCdEf"}
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return JSONResponse({"error": error}, status_code=status)

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}" and "access_token" not in request.query_params

    async def phone_number(self, request: Request) -> Response:
        self.calls.append(("GET", request.url.path, dict(request.query_params)))
        if not self._authorised(request):
            return self._error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        number = request.path_params["number"]
        if number in self.inbound_media or number.startswith("gone"):
            data, mime = self.inbound_media.get(number, (b"", "image/jpeg"))
            host = self.media_url_host or self.base_url
            return JSONResponse({"url": f"{host}/files/{number}?ext=1", "mime_type": mime, "sha256": "x",
                                 "file_size": len(data), "id": number, "messaging_product": "whatsapp"})
        if number != PHONE_NUMBER_ID:
            return self._error(400, 100, "Unsupported get request.")
        return JSONResponse({"display_phone_number": "+1 555-078-3881", "verified_name": "Test operator",
                             "id": PHONE_NUMBER_ID})

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("POST", request.url.path, body))
        if not self._authorised(request):
            return self._error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if request.path_params["number"] != PHONE_NUMBER_ID or body.get("messaging_product") != "whatsapp":
            return self._error(400, 100, "Invalid parameter")
        if self.server_error_next > 0:
            self.server_error_next -= 1
            return Response("upstream connect error", status_code=500)
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return self._error(429, 130429, "Rate limit hit", "Cloud API message throughput has been reached.")
        if body.get("status") == "read":
            if not str(body.get("message_id", "")).startswith("wamid."):
                return self._error(400, 100, "Invalid parameter", "message_id is not a message id")
            self.read_marks.append(body)
            return JSONResponse({"success": True})
        to = body.get("to")
        if body.get("type") == "template":
            refusal = self._check_template(body["template"])
            if refusal is not None:
                return refusal
        if to in self.window_closed and body.get("type") != "template":
            return self._error(400, 131047, "Re-engagement message",
                               "Message failed to send because more than 24 hours have passed since the customer "
                               "last replied to this number.")
        kind = body.get("type")
        if kind == "text" and not (0 < len(body["text"]["body"]) <= 4096):
            return self._error(400, 100, "Invalid parameter", "text.body is too long")
        if kind == "interactive":
            inter = body["interactive"]
            assert len(inter["body"]["text"]) <= 1024
            if inter["type"] == "button":
                buttons = inter["action"]["buttons"]
                assert 1 <= len(buttons) <= 3 and all(len(b["reply"]["title"]) <= 20 for b in buttons)
            else:
                rows = inter["action"]["sections"][0]["rows"]
                assert 1 <= len(rows) <= 10 and all(len(r["title"]) <= 24 for r in rows)
        if kind == "document" and body["document"]["id"] not in self.media:
            return self._error(400, 131053, "Media upload error")
        self._next_id += 1
        wamid = f"wamid.OUT{self._next_id:06d}"
        self.sent.append({**body, "_id": wamid})
        return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                             "messages": [{"id": wamid}]})

    def _check_template(self, sent: dict[str, Any]) -> JSONResponse | None:
        name, code = sent.get("name"), (sent.get("language") or {}).get("code")
        found = next((t for t in self.templates if t["name"] == name and t["language"] == code), None)
        if found is None or found["status"] == "PENDING":
            return self._error(404, 132001, "Template name does not exist in the translation",
                               f"template name ({name}) does not exist in {code}")
        if found["status"] == "PAUSED":
            return self._error(400, 132015, "Template is Paused", "Template is paused due to low quality")
        body = next(c["text"] for c in found["components"] if c["type"] == "BODY")
        expected = body.count("{{")
        given = [p for c in sent.get("components", []) if c["type"] == "body" for p in c["parameters"]]
        if len(given) != expected:
            return self._error(400, 132000, "Number of parameters does not match the expected number of params",
                               f"body: number of localizable_params ({len(given)}) does not match the expected "
                               f"number of params ({expected})")
        return None

    async def message_templates(self, request: Request) -> Response:
        self.calls.append(("GET", request.url.path, dict(request.query_params)))
        if not self._authorised(request):
            return self._error(401, 190, "Invalid OAuth access token")
        if request.path_params["waba"] != WABA_ID:
            return self._error(400, 100, "Unsupported get request.")
        if self.templates_error_next > 0:
            self.templates_error_next -= 1
            return Response("upstream connect error", status_code=500)
        start = int(request.query_params.get("after") or 0)
        page = self.templates[start:start + self.page_size]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
        if start + len(page) < len(self.templates):
            paging["next"] = f"{self.base_url}/{VERSION}/{WABA_ID}/message_templates?after={start + len(page)}"
        return JSONResponse({"data": page, "paging": paging})

    async def upload(self, request: Request) -> Response:
        async with request.form() as form:
            self.calls.append(("POST", request.url.path, {k: v for k, v in form.items() if isinstance(v, str)}))
            if not self._authorised(request):
                return self._error(401, 190, "Invalid OAuth access token")
            file = form.get("file")
            if file is None or isinstance(file, str) or form.get("messaging_product") != "whatsapp":
                return self._error(400, 100, "Invalid parameter")
            self._next_id += 1
            media_id = f"media{self._next_id}"
            self.media[media_id] = (file.filename or "", await file.read(), str(form.get("type")))
        return JSONResponse({"id": media_id})

    async def download(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        self.downloads.append(media_id)
        if not self._authorised(request):
            return Response(status_code=401)
        if media_id not in self.inbound_media:
            return Response(status_code=404)
        data, mime = self.inbound_media[media_id]
        return Response(data, media_type=mime)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route(f"/{VERSION}/{{number}}", self.phone_number, methods=["GET"]),
            Route(f"/{VERSION}/{{number}}/messages", self.messages, methods=["POST"]),
            Route(f"/{VERSION}/{{waba}}/message_templates", self.message_templates, methods=["GET"]),
            Route(f"/{VERSION}/{{number}}/media", self.upload, methods=["POST"]),
            Route("/files/{media_id}", self.download, methods=["GET"]),
        ])


@asynccontextmanager
async def running_graph_api() -> AsyncIterator[FakeGraphAPI]:
    api = FakeGraphAPI(port=free_port())
    async with serve(api.app(), port=api.port, lifespan="off"):
        yield api


def template(name: str, body: str, language: str = "en_US", status: str = "APPROVED",
             **extra: Any) -> dict[str, Any]:
    """A template as message_templates lists it."""
    return {"name": name, "language": language, "status": status, "category": "UTILITY",
            "id": str(abs(hash((name, language))))[:15], "components": [{"type": "BODY", "text": body}], **extra}


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()
