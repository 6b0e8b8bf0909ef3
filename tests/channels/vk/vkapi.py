"""A local stand-in of the VK API methods the channel uses (and VK's file servers), over real HTTP."""

from __future__ import annotations

import copy
import json
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

TOKEN = "vk1.a.test-community-token"
GROUP_ID = 227000001
SECRET = "vk-callback-secret"
CONFIRMATION = "3f9a1c2b"
FIXTURES = Path(__file__).parent / "fixtures"
VK_HOSTS = ("https://sun9-1.userapi.com", "https://vk.com")


@dataclass
class FakeVkAPI:
    port: int = 0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # path (without the leading /files/) -> bytes
    downloads: list[str] = field(default_factory=list)  # file paths asked for, served or not
    uploads: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # uploaded file token -> (name, bytes)
    blocked: set[int] = field(default_factory=set)  # peers that answer error 901
    rate_limit_next: int = 0  # messages.send answers error 6 this many times
    seen_random_ids: dict[tuple[int, int], int] = field(default_factory=dict)  # VK's own de-duplication
    _next_id: int = 5000

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fixture(self, name: str, **message_fields: Any) -> dict[str, Any]:
        """A recorded event by name; VK's media hosts point at this stand-in, message fields replaced."""
        text = (FIXTURES / f"{name}.json").read_text()
        for host in VK_HOSTS:
            text = text.replace(host, f"{self.base_url}/files")
        data: dict[str, Any] = json.loads(text)
        obj = data.get("object")
        message = obj.get("message", obj) if isinstance(obj, dict) else None
        if isinstance(message, dict):
            message.update(copy.deepcopy(message_fields))
        return data

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def sent(self, peer_id: int | None = None) -> list[dict[str, Any]]:
        """messages.send calls VK accepted (not refused, not de-duplicated)."""
        return [p for p in self.called("messages.send") if p.get("_accepted")
                and (peer_id is None or int(p["peer_id"]) == peer_id)]

    def sent_texts(self, peer_id: int | None = None) -> list[str]:
        return [str(p["message"]) for p in self.sent(peer_id) if "message" in p]

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return JSONResponse({"response": result})

    @staticmethod
    def _error(code: int, message: str) -> JSONResponse:
        # VK answers errors with HTTP 200 and an error object.
        return JSONResponse({"error": {"error_code": code, "error_msg": message, "request_params": []}})

    async def method(self, request: Request) -> Response:
        async with request.form() as form:
            params: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        name = request.path_params["method"]
        self.calls.append((name, params))
        if params.get("access_token") != TOKEN:
            return self._error(5, "User authorization failed: invalid access_token (4).")
        if not params.get("v"):
            return self._error(8, "Invalid request: v is required")
        handler = getattr(self, "_m_" + name.replace(".", "_"), None)
        if handler is None:
            return self._error(3, "Unknown method passed.")
        result: Response = await handler(params)
        return result

    async def _m_groups_getById(self, p: dict[str, Any]) -> Response:
        if int(p["group_id"]) != GROUP_ID:
            return self._error(100, "One of the parameters specified was missing or invalid: group_ids")
        return self._ok({"groups": [{"id": GROUP_ID, "name": "Test operator", "screen_name": "test_operator"}],
                         "profiles": []})

    async def _m_messages_send(self, p: dict[str, Any]) -> Response:
        peer_id = int(p["peer_id"])
        if "random_id" not in p:
            return self._error(100, "One of the parameters specified was missing or invalid: random_id is required")
        if peer_id in self.blocked:
            return self._error(901, "Can't send messages for users without permission")
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return self._error(6, "Too many requests per second")
        if "keyboard" in p:
            json.loads(p["keyboard"])  # must be JSON
        key = (peer_id, int(p["random_id"]))
        if key in self.seen_random_ids:  # VK sends nothing twice for one random_id: it answers the first id
            return self._ok(self.seen_random_ids[key])
        self._next_id += 1
        self.seen_random_ids[key] = self._next_id
        p["_accepted"] = True
        return self._ok(self._next_id)

    async def _m_messages_setActivity(self, p: dict[str, Any]) -> Response:
        if int(p["peer_id"]) in self.blocked:
            return self._error(901, "Can't send messages for users without permission")
        if p.get("type") not in ("typing", "audiomessage"):
            return self._error(100, "One of the parameters specified was missing or invalid: type")
        return self._ok(1)

    async def _m_docs_getMessagesUploadServer(self, p: dict[str, Any]) -> Response:
        if int(p["peer_id"]) in self.blocked:
            return self._error(901, "Can't send messages for users without permission")
        return self._ok({"upload_url": f"{self.base_url}/upload?peer={p['peer_id']}"})

    async def upload(self, request: Request) -> Response:
        async with request.form() as form:
            file = form.get("file")
            if file is None or isinstance(file, str):
                return JSONResponse({"error": "no file"})
            token = f"upload-{len(self.uploads) + 1}"
            self.uploads[token] = (file.filename or "", await file.read())
        return JSONResponse({"file": token})

    async def _m_docs_save(self, p: dict[str, Any]) -> Response:
        if p.get("file") not in self.uploads:
            return self._error(100, "One of the parameters specified was missing or invalid: file")
        self._next_id += 1
        return self._ok({"type": "doc", "doc": {"id": self._next_id, "owner_id": -GROUP_ID,
                                                "title": p.get("title", ""), "file": p["file"]}})

    async def download(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.downloads.append(path)
        if path not in self.files:
            return Response(status_code=404)
        return Response(self.files[path], media_type="application/octet-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/method/{method}", self.method, methods=["POST"]),
            Route("/upload", self.upload, methods=["POST"]),
            Route("/files/{path:path}", self.download, methods=["GET"]),
        ])


@asynccontextmanager
async def running_vk_api() -> AsyncIterator[FakeVkAPI]:
    api = FakeVkAPI(port=free_port())
    async with serve(api.app(), port=api.port, lifespan="off"):
        yield api
