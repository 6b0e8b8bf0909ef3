"""One place that renders errors: domain errors with their status, validation errors as 422."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.db.outage import is_database_outage, is_unstorable_text
from core.db.timeout import is_statement_timeout
from core.errors import DomainError, TooManyRequestsError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# What a database outage can surface as (core.db.outage decides whether it is one): SQLAlchemy's wrappers, the bare
# socket errors and asyncpg's own errors of a connect call, which SQLAlchemy does not wrap.
OUTAGE_EXCEPTIONS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, asyncpg.PostgresError,
                                                  asyncpg.InterfaceError)


def database_unavailable() -> JSONResponse:
    """The documented answer while the database is down: 503 JSON with Retry-After (nothing was committed)."""
    return JSONResponse(error_body("database_unavailable", "the database is unavailable; retry later"), 503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def query_timeout(seconds: float) -> JSONResponse:
    """A statement ran past the request's time limit and was stopped: 503 with what to do about it."""
    return JSONResponse(error_body(
        "query_timeout", f"the request took longer than {seconds:g} s in the database and was stopped; narrow the "
        "search or the filters, or retry later", timeout_seconds=seconds), 503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def unstorable_text() -> JSONResponse:
    return JSONResponse(error_body(
        "unstorable_text", "a text in the request holds a character that cannot be stored (NUL, U+0000); remove it"),
        422)


def log_timeout(request: Request, exc: BaseException) -> None:
    log.warning("statement timeout", extra={"path": request.url.path, "query": request.url.query[:300],
                                            "error": f"{type(exc).__name__}: {exc}"[:300]})


def log_outage(request: Request, exc: BaseException) -> None:
    log.error("database unavailable", extra={"path": request.url.path,
                                             "error": f"{type(exc).__name__}: {exc}"[:300]})


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = jsonable_encoder(details)
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, TooManyRequestsError):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(error_body(exc.code, exc.message, **exc.details), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            errors.append({"field": loc, "message": err.get("msg", ""), "type": err.get("type", "")})
        is_json = any(e["type"] == "json_invalid" for e in errors)
        message = "request body is not valid JSON" if is_json else "request validation failed"
        return JSONResponse(error_body("invalid_json" if is_json else "validation_failed", message, errors=errors),
                            422 if not is_json else 400)

    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        if is_statement_timeout(exc):
            log_timeout(request, exc)
            return query_timeout(request.app.state.switchboard.settings.statement_timeout_seconds)
        if is_unstorable_text(exc):
            return unstorable_text()
        if not is_database_outage(exc):
            raise exc  # a bug, not an outage: the server error it always was
        # Nothing was committed; the caller may retry the same request (ingest is idempotent).
        log_outage(request, exc)
        return database_unavailable()

    for exc_class in OUTAGE_EXCEPTIONS:
        app.add_exception_handler(exc_class, _database_down)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)
