"""ASGI middleware: request body size limit (413) and request metrics."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics


class BodySizeLimitMiddleware:
    """Reject bodies over `max_bytes` with 413, by Content-Length or while streaming.

    `overrides` are (method, path regex, limit) for the few routes that take files; the regex must match the
    whole path, so every other route keeps the small limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: Sequence[tuple[str, str, int]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = [(method.upper(), re.compile(pattern), limit) for method, pattern, limit in overrides]

    def limit_for(self, scope: Scope) -> int:
        method, path = scope.get("method", ""), scope.get("path", "")
        for allowed, pattern, limit in self.overrides:
            if method == allowed and pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(send, 400, "invalid Content-Length header")
                    return
                if declared > max_bytes:
                    await self._reject(send, 413, f"request body is {declared} bytes; the limit is {max_bytes}")
                    return
        received = 0
        started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Answer now and tell the app the client went away; whatever it sends later is dropped.
                    rejected = True
                    if not started:
                        await self._reject(send, 413, f"request body exceeds the limit of {max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    @staticmethod
    async def _reject(send: Send, status: int, message: str) -> None:
        code = "payload_too_large" if status == 413 else "bad_request"
        body = json.dumps({"error": code, "message": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled children looked up once per (method, route, status): prometheus_client's labels() call
        # validates and locks on every use.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            key = (scope.get("method", ""), path, str(status))
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(*key)
            histogram = self._histograms.get(path)
            if histogram is None:
                histogram = self._histograms[path] = metrics.HTTP_LATENCY.labels(path)
            counter.inc()
            histogram.observe(time.perf_counter() - start)
