"""A local stand-in of the Telegram Bot API methods the channel uses, served over real HTTP for PTB's base_url."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.net import free_port
from tests.support.server import serve

TOKEN = "123456:TEST-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Test Bot", "username": "test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
CHAT_ACTIONS = frozenset({"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                          "upload_document", "choose_sticker", "find_location", "record_video_note",
                          "upload_video_note"})
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str, update_id: int, **message_overrides: Any) -> dict[str, Any]:
    """A recorded update by name, with its update id (and message fields) replaced."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    data["update_id"] = update_id
    for key in ("message", "edited_message"):
        if key in data and isinstance(data[key], dict):
            data[key].update(message_overrides)
    return data


@dataclass(frozen=True)
class RawUpdate:
    """An update served as these exact JSON bytes (what json.dumps cannot produce: 5,000 levels of nesting)."""

    update_id: int
    json_text: str


def _update_id(update: dict[str, Any] | RawUpdate) -> int:
    return update.update_id if isinstance(update, RawUpdate) else int(update["update_id"])


@dataclass
class FakeBotAPI:
    port: int = 0
    updates: list[dict[str, Any] | RawUpdate] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    rate_limit_next: int = 0
    fail_documents_next: int = 0  # sendDocument answers 502 this many times (a proxy in trouble)
    message_failures: list[tuple[int, str]] = field(default_factory=list)  # sendMessage's next answers, in order
    webhook: dict[str, Any] | None = None
    confirmed_offset: int = 0
    _next_message_id: int = 1000
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def push(self, *updates: dict[str, Any] | RawUpdate) -> None:
        self.updates.extend(copy.deepcopy(list(updates)))
        self._new_update.set()

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [str(p["text"]) for p in self.called("sendMessage") if chat_id is None or int(p["chat_id"]) == chat_id]

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    def _fail(status: int, description: str, **parameters: Any) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return JSONResponse(body, status_code=status)

    async def method(self, request: Request) -> Response:
        if request.path_params["token"] != TOKEN:
            return self._fail(401, "Unauthorized")
        name = request.path_params["method"]
        params: dict[str, Any] = {}
        if request.headers.get("content-type", "").startswith("application/json"):
            params = await request.json()
        else:
            async with request.form() as form:
                for key, value in form.items():
                    if isinstance(value, str):
                        try:
                            params[key] = json.loads(value)
                        except ValueError:
                            params[key] = value
                    else:  # an uploaded file (sendDocument with bytes): keep what Telegram would receive
                        params[key] = {"filename": value.filename, "content": await value.read()}
        self.calls.append((name, params))
        handler = getattr(self, f"_m_{name}", None)
        if handler is None:
            return self._fail(404, f"Not Found: method {name} is not served by the stand-in")
        result: Response = await handler(params)
        return result

    async def _m_getMe(self, _p: dict[str, Any]) -> Response:
        return self._ok(BOT_USER)

    async def _m_setWebhook(self, p: dict[str, Any]) -> Response:
        self.webhook = p
        return self._ok(True)

    async def _m_deleteWebhook(self, _p: dict[str, Any]) -> Response:
        self.webhook = None
        return self._ok(True)

    async def _m_getUpdates(self, p: dict[str, Any]) -> Response:
        offset = int(p.get("offset") or 0)
        if offset:
            # Like Telegram: asking from an offset confirms every update before it.
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self.updates = [u for u in self.updates if _update_id(u) >= offset]
        deadline = time.monotonic() + min(float(p.get("timeout") or 0), 1.0)
        while not self.updates and time.monotonic() < deadline:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        batch = self.updates[:min(100, int(p.get("limit") or 100))]
        items = [u.json_text if isinstance(u, RawUpdate) else json.dumps(u) for u in batch]
        return Response('{"ok": true, "result": [' + ", ".join(items) + "]}", media_type="application/json")

    def _message(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        self._next_message_id += 1
        return {"message_id": self._next_message_id, "date": int(time.time()), "from": BOT_USER,
                "chat": {"id": chat_id, "type": "private"}, **fields}

    async def _m_sendMessage(self, p: dict[str, Any]) -> Response:
        chat_id = int(p["chat_id"])
        if chat_id in self.blocked:
            return self._fail(403, "Forbidden: bot was blocked by the user")
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return self._fail(429, "Too Many Requests: retry after 1", retry_after=1)
        if self.message_failures:
            status, description = self.message_failures.pop(0)
            return self._fail(status, description, **({"retry_after": 7} if status == 429 else {}))
        return self._ok(self._message(chat_id, text=p["text"]))

    async def _m_sendDocument(self, p: dict[str, Any]) -> Response:
        chat_id = int(p["chat_id"])
        if chat_id in self.blocked:
            return self._fail(403, "Forbidden: bot was blocked by the user")
        if self.fail_documents_next > 0:
            self.fail_documents_next -= 1
            return self._fail(502, "Bad Gateway")
        document = p.get("document")
        name = document["filename"] if isinstance(document, dict) else None
        return self._ok(self._message(chat_id, document={"file_id": "sent", "file_unique_id": "sent-u",
                                                         **({"file_name": name} if name else {})}))

    async def _m_sendChatAction(self, p: dict[str, Any]) -> Response:
        chat_id = int(p["chat_id"])
        if chat_id in self.blocked:
            return self._fail(403, "Forbidden: bot was blocked by the user")
        if p.get("action") not in CHAT_ACTIONS:
            return self._fail(400, "Bad Request: wrong parameter action in request")
        return self._ok(True)

    async def _m_answerCallbackQuery(self, _p: dict[str, Any]) -> Response:
        return self._ok(True)

    async def _m_getFile(self, p: dict[str, Any]) -> Response:
        file_id = str(p["file_id"])
        if file_id not in self.files:
            return self._fail(400, "Bad Request: invalid file_id")
        return self._ok({"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(self.files[file_id]),
                         "file_path": f"files/{file_id}.bin"})

    async def download(self, request: Request) -> Response:
        if request.path_params["token"] != TOKEN:
            return Response(status_code=401)
        file_id = request.path_params["path"].removeprefix("files/").removesuffix(".bin")
        if file_id not in self.files:
            return Response(status_code=404)
        return Response(self.files[file_id], media_type="application/octet-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/bot{token}/{method}", self.method, methods=["POST", "GET"]),
            Route("/file/bot{token}/{path:path}", self.download, methods=["GET"]),
        ])


@asynccontextmanager
async def running_bot_api() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI(port=free_port())
    async with serve(api.app(), port=api.port, lifespan="off"):
        yield api
