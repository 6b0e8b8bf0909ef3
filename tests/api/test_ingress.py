"""The channels' ingress routes call their plain endpoints directly (api/ingress.py): no dependency solving per
request, while errors still go through the app's handlers and other routes keep FastAPI's handler."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi.routing import APIRoute

from api.ingress import IngressRoute
from api.routers import rest_channel, telegram, vk, whatsapp


def routes(router: fastapi.APIRouter) -> dict[tuple[str, str], APIRoute]:
    return {(method, route.path): route for route in router.routes if isinstance(route, APIRoute)
            for method in route.methods}


def test_plain_endpoints_are_called_directly_others_get_fastapis_handler() -> None:
    plain = [routes(telegram.router)[("POST", "/channels/telegram/webhook")],
             routes(vk.router)[("POST", "/channels/vk/callback")],
             routes(whatsapp.router)[("POST", "/channels/whatsapp/webhook")],
             routes(rest_channel.router)[("POST", "/channels/rest/messages")]]
    for route in plain:
        assert isinstance(route, IngressRoute)
        assert route.get_route_handler() is route.endpoint, route.path
    others = [routes(whatsapp.router)[("GET", "/channels/whatsapp/webhook")],   # query parameters
              routes(whatsapp.router)[("GET", "/channels/whatsapp/templates")],  # dependencies
              routes(rest_channel.router)[("GET", "/channels/rest/replies")]]
    for route in others:
        assert isinstance(route, IngressRoute)
        assert route.get_route_handler() is not route.endpoint, route.path


async def test_a_webhook_request_solves_no_dependencies_and_its_errors_are_rendered(
        app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    # The test app has no Telegram channel: the endpoint raises NotFoundError, the app's handler renders it.
    r = await app_client.post("/channels/telegram/webhook", content=b"{}",
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and "Telegram" in r.json()["message"]
    assert solved == []
    r = await app_client.get("/channels/rest/replies")  # a route with parameters: FastAPI's handler
    assert r.status_code in (401, 503)
    assert solved == ["/channels/rest/replies"]
