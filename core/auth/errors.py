from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import TooManyRequestsError


class LoginThrottledError(TooManyRequestsError):
    """Too many failed sign-ins: this try is refused unchecked; `until` says when the next may come."""

    code = "too_many_attempts"

    def __init__(self, message: str, until: datetime, now: datetime, scope: str, **details: Any) -> None:
        self.until, self.scope = until, scope
        super().__init__(message, (until - now).total_seconds(), scope=scope, until=until.isoformat(), **details)


class AccountLockedError(LoginThrottledError):
    """The account is locked after many failed sign-ins: even the right password is refused until `until`."""

    code = "account_locked"
