"""The full REST round trip: customer message in -> ticket -> agent reply -> delivered to a real webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.app import create_app
from channels.config import ChannelsSettings, RestChannelSettings
from tests.conftest import REST_HEADERS, REST_KEY, keyword_engine, make_settings, responses, rest_message
from tests.support.server import serve
from tests.support.waiting import wait_for


@dataclass
class WebhookReceiver:
    """A real HTTP server standing in for the integrating system; can fail the first N deliveries."""

    fail_first: int = 0
    status_on_failure: int = 503
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> JSONResponse:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return JSONResponse({"error": "temporarily down"}, status_code=self.status_on_failure)
        body = await request.body()
        self.received.append(json.loads(body))
        self.headers.append(dict(request.headers) | {"_raw": body.decode()})
        self.arrived.set()
        return JSONResponse({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    recv = WebhookReceiver()
    async with serve(Starlette(routes=[Route("/hook", recv.endpoint, methods=["POST"])]), lifespan="off") as live:
        yield recv, f"{live.url}/hook"


def _app(db_url: str, hook_url: str, secret: str = "hook-secret") -> Any:
    settings = make_settings(db_url, channels=ChannelsSettings(rest=RestChannelSettings(
        api_key=SecretStr(REST_KEY), webhook_url=hook_url, webhook_secret=SecretStr(secret))))
    return create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)


async def test_round_trip_to_webhook(db_url: str, db_engine: Any, receiver: tuple[WebhookReceiver, str],
                                     agent: tuple[Any, dict[str, str]]) -> None:
    import httpx

    recv, hook = receiver
    app = _app(db_url, hook)
    _, auth = agent
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            # Nothing the keyword engine knows: escalated to humans, with an acknowledgement to the customer.
            r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message("m-1", "My TV shows a black screen", sender="c-42"))
            assert r.status_code == 201, r.text
            number = r.json()["ticket_number"]
            assert number.startswith("T-")
            assert r.json()["action"] == "escalate"
            await wait_for(lambda: len(recv.received) == 1)
            assert recv.received[0]["author"] == "bot"
            assert number in recv.received[0]["text"]

            r = await client.get(f"/tickets/{number}", headers=auth)
            assert r.status_code == 200
            assert r.json()["status"] == "open"
            r = await client.post(f"/tickets/{number}/take", headers=auth)
            assert r.status_code == 200
            r = await client.post(f"/tickets/{number}/reply", headers=auth,
                                  json={"text": "Please restart the set-top box — Ольга"})
            assert r.status_code == 201, r.text
            message_id = r.json()["id"]

            await wait_for(lambda: len(recv.received) == 2)
            delivered = recv.received[1]
            assert delivered["message_id"] == message_id
            assert delivered["text"] == "Please restart the set-top box — Ольга"
            assert delivered["recipient"] == "c-42"
            assert delivered["ticket_number"] == number
            assert delivered["author"] == "agent"
            raw = recv.headers[1]["_raw"].encode()
            expected = "sha256=" + hmac.new(b"hook-secret", raw, hashlib.sha256).hexdigest()
            assert recv.headers[1]["x-switchboard-signature"] == expected

            # The receiver may see the delivery before the dispatcher has recorded it as sent: poll the API.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                r = await client.get(f"/tickets/{number}", headers=auth)
                reply = next(m for m in r.json()["messages"] if m["id"] == message_id)
                if reply["delivery"]["status"] != "sending" or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert reply["delivery"]["status"] == "sent"
            assert r.json()["first_response_at"] is not None

            # The pull endpoint serves the same replies for integrations without a webhook.
            r = await client.get("/channels/rest/replies", headers=REST_HEADERS, params={"recipient": "c-42"})
            assert [i["message_id"] for i in r.json()["items"]][-1] == message_id


async def test_webhook_failing_then_recovering_is_retried(
    db_url: str, db_engine: Any, receiver: tuple[WebhookReceiver, str]
) -> None:
    import httpx

    recv, hook = receiver
    recv.fail_first = 2
    app = _app(db_url, hook)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message("m-1", "hello", sender="c-1"))
            assert r.json()["action"] == "answer"
            await wait_for(lambda: len(recv.received) == 1)
            assert recv.attempts == 3
            assert recv.received[0]["text"] == "Hello! How can I help?"
            assert recv.headers[0]["x-switchboard-delivery"] == str(recv.received[0]["delivery_id"])
