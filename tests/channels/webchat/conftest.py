"""A real uvicorn server running the whole app with the web chat, and a small WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from channels.webchat.settings import WebchatChannelSettings
from core.clock import SYSTEM_CLOCK, Clock
from tests.conftest import REST_KEY, free_port, keyword_engine, make_settings, responses

SITE_SECRET = "site-identity-secret"


@dataclass
class Server:
    url: str
    ws_url: str
    app: Any


async def start_server(db_url: str, data_dir: Path, *, clock: Clock = SYSTEM_CLOCK, app_settings: Any = None,
                       **webchat: Any) -> tuple[Server, uvicorn.Server, asyncio.Task[None]]:
    values: dict[str, Any] = {"identity_secret": SecretStr(SITE_SECRET), "message_burst": 5,
                              "messages_per_second": 2.0, "max_frame_bytes": 4096, "max_message_chars": 1000}
    values.update(webchat)
    settings = make_settings(db_url, data_dir=data_dir, channels=ChannelsSettings(
        rest=RestChannelSettings(api_key=SecretStr(REST_KEY)), webchat=WebchatChannelSettings(**values)),
        **(app_settings or {}))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False, clock=clock)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/channels/webchat/ws", app), server, task


@pytest.fixture
async def chat_server(db_url: str, db_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Server]:
    info, server, task = await start_server(db_url, tmp_path)
    yield info
    server.should_exit = True
    await task


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
