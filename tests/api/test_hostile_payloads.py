"""Payloads that cannot be read or stored (5,000 levels of nesting, lone surrogates, NUL) get a 4xx with the
reason from the REST channel: never a 500, never a 503 that tells the sender to retry for ever."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import REST_HEADERS, rest_message

DEEP = "[" * 5000 + "]" * 5000


def _body(**fields: Any) -> bytes:
    return json.dumps(rest_message("h-1", "hello", **fields)).encode()


CASES = [
    ("deep body", ('{"external_message_id": "h-1", "sender": {"external_id": "c"}, "text": "x", "junk": '
                   + DEEP + "}").encode()),
    ("deep attachment", ('{"external_message_id": "h-1", "sender": {"external_id": "c"}, "text": "x", '
                         '"attachments": ' + DEEP + "}").encode()),
    ("surrogate in text", json.dumps(rest_message("h-1", "broken \ud800 text")).encode()),
    ("surrogate in name", json.dumps({"external_message_id": "h-1", "sender": {"external_id": "c", "name": "\ud800"},
                                      "text": "x"}).encode()),
    ("surrogate in id", json.dumps(rest_message("h-\udfff", "hello")).encode()),
    ("surrogate in thread", _body(thread_id="t-\ud800")),
    ("NUL in name", json.dumps({"external_message_id": "h-1", "sender": {"external_id": "c", "name": "a\x00b"},
                                "text": "x"}).encode()),
    ("NUL in id", json.dumps(rest_message("h-\x00", "hello")).encode()),
]


@pytest.mark.parametrize(("name", "content"), CASES, ids=[name for name, _ in CASES])
async def test_rest_refuses_unstorable_payloads_with_a_reason(app_client: httpx.AsyncClient, name: str,
                                                              content: bytes) -> None:
    r = await app_client.post("/channels/rest/messages", content=content,
                              headers={**REST_HEADERS, "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
    assert r.json()["message"], name
    # Nothing half-written, and the channel takes the next message.
    r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message("ok-1", "hello"))
    assert r.status_code == 201, r.text
