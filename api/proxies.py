"""Who is the client, and did it come over https: the peer, or what a trusted reverse proxy says.

X-Forwarded-For, Forwarded and X-Forwarded-Proto are believed only from the proxies listed in the
`trusted_proxies` setting; from anyone else they are the client's own words and ignored. With a chain of
trusted proxies the client is the rightmost address that is not one of them (each proxy appends the address
it saw, so only entries added by our own proxies can be trusted).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.requests import HTTPConnection

UNKNOWN = "unknown"
_FORWARDED_PAIR = re.compile(r'([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # an IPv4 address with a port
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """The parsed `trusted_proxies` setting."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        if not self.networks or not host:
            return False
        address = _parse_address(host)
        return address is not None and any(address in net for net in self.networks)

    def client_address(self, conn: HTTPConnection) -> str:
        """The client's address as a string ("unknown" when the server gives none)."""
        peer = conn.scope.get("client")
        host: str = peer[0] if peer else UNKNOWN
        if not self.networks or not self.trusts(host):
            return host
        hops = _forwarded_for(conn)
        for hop in reversed(hops):
            address = _parse_address(hop)
            if address is None:
                return host  # an unknown token (Forwarded: for=unknown / _hidden): the last address we know
            host = str(address)
            if not any(address in net for net in self.networks):
                return host
        return host

    def is_https(self, conn: HTTPConnection) -> bool:
        """Whether the client's request came over https (to us, or to our proxy)."""
        if conn.url.scheme in ("https", "wss"):
            return True
        peer = conn.scope.get("client")
        if not self.networks or not peer or not self.trusts(peer[0]):
            return False
        forwarded = conn.headers.get("forwarded")
        if forwarded:
            protos = [v for k, v in _forwarded_pairs(forwarded) if k == "proto"]
            if protos:
                return protos[-1].lower() == "https"
        proto = conn.headers.get("x-forwarded-proto") or ""
        return proto.split(",")[-1].strip().lower() == "https"


def _forwarded_pairs(header: str) -> list[tuple[str, str]]:
    return [(k.lower(), v.strip('"')) for k, v in _FORWARDED_PAIR.findall(header)]


def _forwarded_for(conn: HTTPConnection) -> list[str]:
    """The client addresses the proxies recorded, first hop first (RFC 7239 Forwarded, else X-Forwarded-For)."""
    forwarded = conn.headers.getlist("forwarded")
    if forwarded:
        return [v for k, v in _forwarded_pairs(",".join(forwarded)) if k == "for"]
    return [h.strip() for line in conn.headers.getlist("x-forwarded-for") for h in line.split(",") if h.strip()]
