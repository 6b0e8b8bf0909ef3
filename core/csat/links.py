"""Signed one-click links of the e-mail survey: ticket id + score + expiry, HMAC-SHA256 with the app's secret key.

A link carries no state of its own: "works once" is the survey's (a second use finds the ticket rated), so a
leaked or forwarded link can never change a score that was given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import DomainError


class LinkError(DomainError):
    """The link was altered (`tampered`) or is past its expiry (`expired`)."""

    status_code = 400

    def __init__(self, reason: str) -> None:
        super().__init__(f"the rating link is {reason}", reason=reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaim:
    ticket_id: int
    score: int
    expires_at: datetime


def _mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), b"csat:" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")


def sign(secret: str, ticket_id: int, score: int, expires_at: datetime) -> str:
    body = f"{ticket_id}.{score}.{int(expires_at.timestamp())}"
    return f"{body}.{_mac(secret, body)}"


def verify(secret: str, token: str, now: datetime) -> LinkClaim:
    """The link's claim; LinkError when it was altered or has expired (checked in that order)."""
    parts = token.split(".")
    if len(parts) != 4 or not all(p.isascii() for p in parts):
        raise LinkError("tampered")
    body, mac = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise LinkError("tampered")
    ticket_id, score, expires = (int(p) for p in parts[:3])  # signed by us: digits
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        raise LinkError("expired")
    return LinkClaim(ticket_id, score, expires_at)
