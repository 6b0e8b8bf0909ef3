"""Domain errors: each carries the HTTP status the API renders it with (core never imports FastAPI)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"


class ConflictError(DomainError):
    status_code = 409
    code = "conflict"


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class PermissionDeniedError(DomainError):
    status_code = 403
    code = "forbidden"


class AuthenticationError(DomainError):
    status_code = 401
    code = "unauthenticated"


class ValidationFailedError(DomainError):
    status_code = 422
    code = "validation_failed"


class ServiceUnavailableError(DomainError):
    status_code = 503
    code = "unavailable"
