"""Client address and https from forwarded headers: believed only from the trusted proxies."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

from api.proxies import TrustedProxies


def conn(peer: str | None, *headers: tuple[str, str], scheme: str = "http") -> HTTPConnection:
    return HTTPConnection({"type": "http", "scheme": scheme, "path": "/", "query_string": b"", "server": ("h", 80),
                           "client": (peer, 5000) if peer else None,
                           "headers": [(k.lower().encode(), v.encode()) for k, v in headers]})


PROXIES = TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::1"])


@pytest.mark.parametrize(("peer", "headers", "client"), [
    ("198.51.100.7", [("X-Forwarded-For", "203.0.113.5")], "198.51.100.7"),  # not a proxy: ignored
    ("10.0.0.2", [], "10.0.0.2"),
    ("10.0.0.2", [("X-Forwarded-For", "203.0.113.5")], "203.0.113.5"),
    # Each proxy appends what it saw: the client is the rightmost address that is not ours, whatever the
    # client wrote to the left of it.
    ("10.0.0.2", [("X-Forwarded-For", "1.2.3.4, 203.0.113.5, 10.0.0.3")], "203.0.113.5"),
    ("10.0.0.2", [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "203.0.113.5")], "203.0.113.5"),
    ("10.0.0.2", [("Forwarded", 'for=198.51.100.1;proto=https, for="[2001:db8::7]:4711"')], "2001:db8::7"),
    ("10.0.0.2", [("Forwarded", "for=192.0.2.60:8080"), ("X-Forwarded-For", "1.1.1.1")], "192.0.2.60"),
    ("10.0.0.2", [("Forwarded", "for=unknown")], "10.0.0.2"),
    ("10.0.0.2", [("X-Forwarded-For", "garbage")], "10.0.0.2"),
    ("2001:db8:ffff::1", [("X-Forwarded-For", "2001:db8::9")], "2001:db8::9"),
    (None, [("X-Forwarded-For", "203.0.113.5")], "unknown"),
])
def test_client_address(peer: str | None, headers: list[tuple[str, str]], client: str) -> None:
    assert PROXIES.client_address(conn(peer, *headers)) == client


def test_nothing_is_believed_without_trusted_proxies() -> None:
    none = TrustedProxies([])
    assert not none
    assert none.client_address(conn("10.0.0.2", ("X-Forwarded-For", "203.0.113.5"))) == "10.0.0.2"
    assert not none.is_https(conn("10.0.0.2", ("X-Forwarded-Proto", "https")))


@pytest.mark.parametrize(("peer", "headers", "scheme", "https"), [
    ("10.0.0.2", [("X-Forwarded-Proto", "https")], "http", True),
    ("10.0.0.2", [("X-Forwarded-Proto", "http")], "http", False),
    ("10.0.0.2", [("Forwarded", "for=1.2.3.4;proto=https")], "http", True),
    ("198.51.100.7", [("X-Forwarded-Proto", "https")], "http", False),
    ("198.51.100.7", [], "https", True),
    ("198.51.100.7", [], "wss", True),
])
def test_https(peer: str, headers: list[tuple[str, str]], scheme: str, https: bool) -> None:
    assert PROXIES.is_https(conn(peer, *headers, scheme=scheme)) is https


def test_a_bad_trusted_proxy_entry_is_a_settings_error() -> None:
    from pydantic import ValidationError

    from api.settings import Settings

    assert Settings(trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings(trusted_proxies=["proxy.example"])
