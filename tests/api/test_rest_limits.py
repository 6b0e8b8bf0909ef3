"""The REST channel checks its key before anything else, throttles wrong keys per address and holds each key
to a request rate (429 + Retry-After), with time from a clock the test moves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from channels.config import ChannelsSettings, RestChannelSettings
from core.clock import ManualClock
from tests.conftest import REST_HEADERS, REST_KEY, make_settings, rest_message
from tests.support.apps import Client, clients_of


@pytest.fixture
async def served(db_url: str, db_engine: Any, clock: ManualClock) -> AsyncIterator[Client]:
    rest = RestChannelSettings(api_key=SecretStr(REST_KEY), requests_per_second=1.0, request_burst=3,
                               bad_key_free_failures=3, bad_key_delay_seconds=2, bad_key_max_delay_seconds=8)
    settings = make_settings(db_url, channels=ChannelsSettings(rest=rest), trusted_proxies=["10.0.0.1"])
    async with clients_of(settings, clock) as client:
        yield client


async def test_the_key_is_checked_before_the_body(app_client: httpx.AsyncClient) -> None:
    """An anonymous caller learns nothing about the fields; a caller with the key gets the details."""
    bad_body = {"external_message_id": "", "sender": {"name": 5}, "surprise": True}
    for headers in ({}, {"X-Api-Key": "wrong"}):
        r = await app_client.post("/channels/rest/messages", json=bad_body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json() == {"error": "unauthenticated", "message": "missing or wrong X-Api-Key"}
        r = await app_client.post("/channels/rest/messages", content=b"{not json", headers=headers)
        assert r.status_code == 401 and "details" not in r.json()
    r = await app_client.post("/channels/rest/messages", json=bad_body, headers=REST_HEADERS)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["details"]["errors"]}
    assert {"body.external_message_id", "body.sender.external_id", "body.sender.name", "body.surprise"} <= fields
    r = await app_client.post("/channels/rest/messages", content=b"{not json", headers=REST_HEADERS)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    r = await app_client.post("/channels/rest/messages", json=rest_message("k-1", "hello"), headers=REST_HEADERS)
    assert r.status_code == 201


async def test_wrong_keys_make_the_address_wait(served: Client, clock: ManualClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="api.routers.rest_channel")
    async with served("198.51.100.7") as guesser, served("192.0.2.20") as other:
        for i in range(4):  # 3 free, the 4th brings a 2 s wait
            r = await guesser.post("/channels/rest/messages", json=rest_message("m", "hi"),
                                   headers={"X-Api-Key": f"guess-{i}"})
            assert r.status_code == 401
        # While it waits even the right key is refused, or the answer would tell the right key apart.
        r = await guesser.post("/channels/rest/messages", json=rest_message("g-1", "hi"), headers=REST_HEADERS)
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json()["error"] == "rate_limited" and r.json()["details"]["reason"] == "bad_api_keys"
        assert (await guesser.get("/channels/rest/replies", headers=REST_HEADERS)).status_code == 429
        r = await other.post("/channels/rest/messages", json=rest_message("o-1", "hi"), headers=REST_HEADERS)
        assert r.status_code == 201
        warnings = [rec for rec in caplog.records if rec.name == "api.routers.rest_channel"]
        assert [(rec.address, rec.wait_seconds) for rec in warnings] == [("198.51.100.7", 2.0)]  # type: ignore[attr-defined]
        clock.advance(2)
        r = await guesser.post("/channels/rest/messages", json=rest_message("x", "hi"), headers={"X-Api-Key": "g"})
        assert r.status_code == 401  # the 5th wrong key: the wait doubles
        r = await guesser.post("/channels/rest/messages", json=rest_message("g-1", "hi"), headers=REST_HEADERS)
        assert r.headers["retry-after"] == "4"
        clock.advance(4)
        r = await guesser.post("/channels/rest/messages", json=rest_message("g-1", "hi"), headers=REST_HEADERS)
        assert r.status_code == 201


async def test_wrong_keys_are_counted_per_forwarded_client_behind_a_trusted_proxy(served: Client) -> None:
    async with served("10.0.0.1") as proxy, served("198.51.100.7") as direct:
        for i in range(4):
            await proxy.get("/channels/rest/replies", headers={"X-Api-Key": f"g{i}",
                                                                "X-Forwarded-For": "203.0.113.5, 10.0.0.1"})
        r = await proxy.get("/channels/rest/replies", headers={**REST_HEADERS, "X-Forwarded-For": "203.0.113.5"})
        assert r.status_code == 429
        r = await proxy.get("/channels/rest/replies", headers={**REST_HEADERS, "X-Forwarded-For": "203.0.113.6"})
        assert r.status_code == 200
        # From a client that is not a trusted proxy the header means nothing: it is counted as itself.
        for i in range(4):
            await direct.get("/channels/rest/replies", headers={"X-Api-Key": f"g{i}",
                                                                "X-Forwarded-For": f"203.0.113.{70 + i}"})
        r = await direct.get("/channels/rest/replies", headers={**REST_HEADERS, "X-Forwarded-For": "203.0.113.99"})
        assert r.status_code == 429


async def test_each_key_is_held_to_its_request_rate(served: Client, clock: ManualClock) -> None:
    async with served() as c:
        for i in range(3):  # the burst
            r = await c.post("/channels/rest/messages", json=rest_message(f"r-{i}", "hi"), headers=REST_HEADERS)
            assert r.status_code == 201
        r = await c.post("/channels/rest/messages", json=rest_message("r-3", "hi"), headers=REST_HEADERS)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["details"]["reason"] == "key_rate"
        assert (await c.get("/channels/rest/replies", headers=REST_HEADERS)).status_code == 429
        clock.advance(1)
        r = await c.post("/channels/rest/messages", json=rest_message("r-3", "hi"), headers=REST_HEADERS)
        assert r.status_code == 201
