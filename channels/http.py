"""The HTTP clients of the channel adapters: httpx's interface over aiohttp's connection handling.

Why: every bot answer is one HTTP request to a provider (Bot API, VK API, Graph API, an integrator's webhook).
Measured on this project's 2-core machines (bench: 3,000 JSON POSTs, 8 at a time, to a local stand-in, process
CPU per request): httpx with its own transport (httpcore over anyio) 2.0-2.1 ms, httpx over aiohttp's transport
0.68 ms, aiohttp alone 0.24 ms. httpcore polls every idle pooled connection's socket on each request and goes
through anyio's cancel scopes per read and write; system calls are costly on virtual machines, and that made the
outbound sends a sixth of a webhook update's CPU. The `httpx-aiohttp` transport (by an httpx maintainer) keeps
httpx's requests, responses and errors - every call site, its error handling and its tests stay as they are -
while aiohttp's connector does the I/O. Its errors reach callers as httpx's (TransportError, TimeoutException...).
"""

from __future__ import annotations

from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def transport(limits: httpx.Limits | None = None) -> httpx.AsyncBaseTransport:
    """A new transport (it opens its aiohttp session on the first request, inside the running loop)."""
    return AiohttpTransport(limits=limits or DEFAULT_LIMITS)


def client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` (same arguments) over aiohttp's transport; `limits` go to the transport."""
    limits = kwargs.pop("limits", None)
    return httpx.AsyncClient(transport=transport(limits), **kwargs)
