"""The OpenAPI document describes the channels' ingress routes completely, headers they read themselves included."""

from __future__ import annotations

import httpx


async def test_ingress_routes_are_documented(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]

    rest = paths["/channels/rest/messages"]["post"]
    # The route validates its body itself, after the API key; the schema stands inline, nested models included.
    body = rest["requestBody"]["content"]["application/json"]["schema"]
    assert body["title"] == "RestMessageCreate" and "$defs" not in body
    assert body["properties"]["sender"]["required"] == ["external_id"]
    assert {"201", "200", "401", "422", "429"} <= set(rest["responses"])
    assert rest["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/RestMessageAccepted")
    assert [(p["name"], p["in"]) for p in rest["parameters"]] == [("X-Api-Key", "header")]

    telegram = paths["/channels/telegram/webhook"]["post"]
    assert [(p["name"], p["in"]) for p in telegram["parameters"]] == [("X-Telegram-Bot-Api-Secret-Token", "header")]
    assert {"403", "503"} <= set(telegram["responses"])
