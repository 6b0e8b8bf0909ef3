"""A real uvicorn server on a free loopback port, in the test's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import uvicorn

from tests.support.net import free_port

START_TIMEOUT = 60.0


class LiveServer:
    """An ASGI app served by uvicorn: its base URL, the app, and a graceful stop."""

    def __init__(self, app: Any, port: int, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = server
        self.task = task

    async def stop(self) -> None:
        """Shut down the way a deploy does (lifespan shutdown included) and wait for it."""
        self.server.should_exit = True
        await self.task


S = TypeVar("S", bound=LiveServer)


async def start_server(app: Any, *, kind: type[S] = LiveServer,  # type: ignore[assignment]
                       port: int | None = None, lifespan: Literal["on", "off", "auto"] = "on",
                       **config: Any) -> S:
    """Serve `app` until `stop()`; returns once it accepts connections (its start-up has run).

    `kind` is a LiveServer subclass for servers that know more about themselves (a web-chat URL);
    `config` goes to uvicorn.Config (e.g. timeout_graceful_shutdown).
    """
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan=lifespan, **config))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(START_TIMEOUT):
        while not server.started:
            if task.done():  # start-up failed: its exception, or uvicorn's exit, says why
                task.result()
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.01)
    return kind(app, port, server, task)


@asynccontextmanager
async def serve(app: Any, *, kind: type[S] = LiveServer,  # type: ignore[assignment]
                **options: Any) -> AsyncIterator[S]:
    """`start_server` as a context: the server stops when the block exits, however it exits."""
    live = await start_server(app, kind=kind, **options)
    try:
        yield live
    finally:
        await live.stop()
