"""The app in-process with its lifespan running, driven by a clock the test moves, seen from chosen addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx

from api.app import create_app
from api.settings import Settings
from core.clock import Clock
from tests.conftest import keyword_engine, responses

# `client(address="192.0.2.10", lang=None, base_url="http://testserver")`: one client connecting from `address`.
Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def clients_of(settings: Settings, clock: Clock) -> AsyncIterator[Client]:
    """The app on `settings` and `clock`; yields a factory of clients, each from an address of its own.

    Limits and sign-in protection count per client address, so tests pick the address; `lang` sets the
    console's language cookie.
    """
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False, clock=clock)
    async with app.router.lifespan_context(app):

        @asynccontextmanager
        async def client(address: str = "192.0.2.10", lang: str | None = None,
                         base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            cookies = {"sb_lang": lang} if lang else None
            async with httpx.AsyncClient(transport=transport, base_url=base_url, cookies=cookies) as c:
                yield c

        yield client
