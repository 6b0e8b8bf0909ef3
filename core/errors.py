"""Domain errors: each carries the HTTP status the API renders it with (core never imports FastAPI)."""

from __future__ import annotations

import math
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


class TooManyRequestsError(DomainError):
    """A limit was hit; `retry_after` (whole seconds, at least 1) becomes the Retry-After header."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float, **details: Any) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message, retry_after=self.retry_after, **details)
