"""Signed anonymous session tokens and the site's signed user identities (Chatwoot-style identity validation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

_SESSION_CONTEXT = b"switchboard.webchat.session.v1"


def _session_key(secret: bytes) -> bytes:
    # A key of its own, so a session token can never be replayed as another kind of signed value.
    return hmac.new(secret, _SESSION_CONTEXT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_visitor_id() -> str:
    return "v_" + secrets.token_urlsafe(16)


def issue_session_token(secret: bytes, visitor_id: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    body = f"{visitor_id}.{issued}"
    signature = _b64(hmac.new(_session_key(secret), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify_session_token(secret: bytes, token: str, ttl_seconds: float, now: float | None = None) -> str | None:
    """The visitor id of a valid, unexpired token; None otherwise."""
    # ASCII only: compare_digest raises on other strings, and isdigit() takes digits int() refuses ("¹").
    parts = token.split(".") if token.isascii() else []
    if len(parts) != 3 or not parts[0].startswith("v_") or not parts[1].isdigit():
        return None
    visitor_id, issued, signature = parts
    expected = _b64(hmac.new(_session_key(secret), f"{visitor_id}.{issued}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    if (now if now is not None else time.time()) - int(issued) > ttl_seconds:
        return None
    return visitor_id


def identity_hash(site_secret: str, identifier: str) -> str:
    """What the site computes on its server: hex HMAC-SHA256(site secret, identifier)."""
    return hmac.new(site_secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def verify_identity(site_secret: str, identifier: str, given_hash: str) -> bool:
    # ASCII first: compare_digest raises TypeError on str with other characters.
    given = given_hash.strip().lower()
    try:
        expected = identity_hash(site_secret, identifier)
    except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800"): no site signed that
        return False
    return given.isascii() and hmac.compare_digest(expected, given)


def identified_visitor_id(identifier: str) -> str:
    """A known user's visitor id: the same on every device."""
    return "u:" + identifier
