"""A real uvicorn server running the whole app with the web chat, and a small WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from core.clock import SYSTEM_CLOCK, Clock
from tests.conftest import REST_KEY, keyword_engine, make_settings, responses
from tests.support import server as support_server
from tests.support.server import LiveServer

SITE_SECRET = "site-identity-secret"


class Server(LiveServer):
    """The whole app on uvicorn, with the web chat's WebSocket address."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/channels/webchat/ws"


async def start_server(db_url: str, data_dir: Path, *, clock: Clock = SYSTEM_CLOCK, app_settings: Any = None,
                       **webchat: Any) -> Server:
    """The app with web-chat settings for tests (small limits, a site identity secret); `stop()` it."""
    values: dict[str, Any] = {"identity_secret": SecretStr(SITE_SECRET), "message_burst": 5,
                              "messages_per_second": 2.0, "max_frame_bytes": 4096, "max_message_chars": 1000}
    values.update(webchat)
    settings = make_settings(db_url, data_dir=data_dir, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), webchat=WebchatChannelSettings(**values)),
        **(app_settings or {}))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False, clock=clock)
    return await support_server.start_server(app, kind=Server)


@pytest.fixture
async def chat_server(db_url: str, db_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Server]:
    server = await start_server(db_url, tmp_path)
    yield server
    await server.stop()


class Client:
    """One widget connection, speaking the protocol by hand."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, **auth: Any) -> tuple[Client, dict[str, Any], dict[str, Any]]:
        ws = await websockets.connect(url)
        client = cls(ws)
        await client.send({"type": "auth", **auth})
        ready = await client.next("ready", "error")
        history = await client.next("history") if ready["type"] == "ready" else {}
        return client, ready, history

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def next(self, *types: str, timeout: float = 10.0, where: Any = None) -> dict[str, Any]:
        """The next frame of one of these types (others are kept in self.frames)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                self.frames.append(frame)
                if frame["type"] in types and (where is None or where(frame)):
                    return frame

    async def say(self, client_id: str, text: str) -> dict[str, Any]:
        await self.send({"type": "message", "client_id": client_id, "text": text})
        return await self.next("ack", where=lambda f: f["client_id"] == client_id)

    async def close(self) -> None:
        await self.ws.close()


async def open_widget(page: Any, server_url: str) -> list[Any]:
    """Open the demo page's widget; the page's script errors are collected in the list returned."""
    errors: list[Any] = []
    page.on("pageerror", lambda exc: errors.append(exc))
    await page.goto(f"{server_url}/demo")
    await page.click(".sbw-btn")
    return errors


async def say_hello(page: Any) -> None:
    """Send "hello" from the open widget and wait for the bot's greeting."""
    await page.fill(".sbw-form textarea", "hello")
    await page.press(".sbw-form textarea", "Enter")
    await page.wait_for_selector(".sbw-bot >> text=Hello! How can I help?", timeout=10_000)
