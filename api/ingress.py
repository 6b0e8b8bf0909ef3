"""The channels' ingress routes: their endpoints are called with the request as they are.

A webhook endpoint takes only the `Request` (it reads and checks the body itself) and returns a `Response`. For
such an endpoint FastAPI's per-request handler still solves its (empty) dependencies, opens its exit stacks and
inspects the returned value: measured under webhook load (bench/channels_chat.py, py-spy on the workers) that
was about a tenth of a worker's CPU, as much as the channel adapter's own work. `IngressRoute` calls these
endpoints directly; the route keeps everything else (path matching, body size limit, OpenAPI, the app's exception
handlers, which see the endpoint's errors as before). An endpoint of any other shape gets FastAPI's handler.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _plain(route: APIRoute) -> bool:
    """Whether the endpoint takes just the request (no parameters, no dependencies) and returns a Response."""
    dependant = route.dependant
    if (dependant.request_param_name is None or dependant.dependencies or dependant.path_params
            or dependant.query_params or dependant.header_params or dependant.cookie_params
            or dependant.body_params or not inspect.iscoroutinefunction(route.endpoint)
            or len(inspect.signature(route.endpoint).parameters) != 1):
        return False
    returns = typing.get_type_hints(route.endpoint).get("return")
    return isinstance(returns, type) and issubclass(returns, Response)


class IngressRoute(APIRoute):
    """An APIRoute whose plain endpoints (request in, Response out) are called without FastAPI's handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if _plain(self):
            endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
            return endpoint
        return super().get_route_handler()
