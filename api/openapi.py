"""The error responses every route can give, declared once per dependency and per kind of input, not per route.

FastAPI documents only the responses a route lists itself; rather than listing 401/403/404/503 by hand on each of
some sixty routes, the OpenAPI document is completed here. A route's own `responses=` win; what is added follows
from what the route depends on:
- a dependency that carries `openapi_responses` (the current user: 401; a role check: 403; the database
  session: 503) adds them to every route that uses it, however deep in the dependency tree;
- a request body adds 400 (not JSON), 413 (over the size limit) and 422; parameters add 422;
- a path parameter adds 404 (no such thing).
Every error body has the one shape `api/errors.py` renders: ErrorRead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

Responses = dict[int | str, dict[str, Any]]


class ErrorRead(BaseModel):
    """Every error the API answers with: a stable code, a readable message and, for some, details."""

    error: str
    message: str
    details: dict[str, Any] | None = None


def error(description: str, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One documented error response with the shared body; `headers` maps a header name to its description."""
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                               for name, text in headers.items()}
    return response


UNAUTHENTICATED: Responses = {401: error("No bearer token, or an invalid or expired one",
                                         headers={"WWW-Authenticate": "Bearer"})}
FORBIDDEN: Responses = {403: error("The signed-in user's role does not allow this")}
NOT_FOUND: Responses = {404: error("No such item")}
CONFLICT: Responses = {409: error("The item's state does not allow this (the details say which states do)")}
UNAVAILABLE: Responses = {503: error("The database (or the channel) is unavailable; retry later",
                                     headers={"Retry-After": "Seconds to wait before retrying"})}
INVALID_INPUT: Responses = {422: error("A parameter or a field of the body is not valid (details.errors)")}
BODY: Responses = {
    400: error("The body is not valid JSON"),
    413: error("The body is larger than the limit"),
    **INVALID_INPUT,
}


def declares(responses: Responses) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a dependency with the responses of every route that depends on it."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        dependency.openapi_responses = responses  # type: ignore[attr-defined]
        return dependency

    return mark


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _flat_params(dependant: Dependant) -> tuple[bool, bool]:
    """Whether the route, through any of its dependencies, reads parameters at all and path parameters."""
    any_params = bool(dependant.path_params or dependant.query_params or dependant.header_params
                      or dependant.cookie_params)
    path = bool(dependant.path_params)
    for sub in dependant.dependencies:
        sub_any, sub_path = _flat_params(sub)
        any_params, path = any_params or sub_any, path or sub_path
    return any_params, path


def responses_for(route: APIRoute) -> Responses:
    """The error responses `route` can give, from what it depends on and what it reads."""
    found: Responses = {}
    for call in _calls(route.dependant):
        found.update(getattr(call, "openapi_responses", {}))
    any_params, path_params = _flat_params(route.dependant)
    if any_params:
        found.update(INVALID_INPUT)
    if route.body_field is not None:
        found.update(BODY)
    if path_params:
        found.update(NOT_FOUND)
    return found


def _rendered(response: dict[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"description": response["description"], "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}}}
    if "headers" in response:
        rendered["headers"] = response["headers"]
    return rendered


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # newer FastAPI keeps included routers whole
        if included is not None:
            yield from _api_routes(included.routes)


def add_error_responses(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """`schema` (FastAPI's OpenAPI document) with the error responses of every route and their one body."""
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorRead"] = ErrorRead.model_json_schema(
        ref_template="#/components/schemas/{model}")
    for route in _api_routes(routes):
        if not route.include_in_schema:
            continue
        errors = responses_for(route)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            documented = operation.setdefault("responses", {})
            # FastAPI's own 422 describes its default body; api/errors.py renders ErrorRead instead.
            if "422" in documented and documented["422"].get("content", {}).get("application/json", {}).get(
                    "schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del documented["422"]
            for code, response in errors.items():
                documented.setdefault(str(code), _rendered(response))
            for code, response in documented.items():
                # A route's own error responses (given with a description only) get the body too.
                if code[:1] in "45" and "content" not in response:
                    response["content"] = _rendered({"description": ""})["content"]
    components = schema["components"]["schemas"]
    text = json.dumps(schema["paths"])
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in text:
            components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the OpenAPI document with the error responses added (built once, on the first request for it)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            app.openapi_schema = add_error_responses(schema, app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
