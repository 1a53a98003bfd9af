"""Which address a request came from: the peer, or a trusted proxy's X-Forwarded-For."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection

from app.core.settings import IPNetwork

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_trusted_proxy(address: str, proxies: Sequence[IPNetwork]) -> bool:
    ip = parse_hop(address)
    return ip is not None and any(ip in network for network in proxies)


def parse_hop(hop: str) -> Address | None:
    """An address as proxies write it (`ip`, `ip:port`, `[ipv6]:port`); None for
    anything else (`unknown`, an obfuscated name)."""
    hop = hop.strip().strip('"')
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[IPNetwork]
) -> str | None:
    """The first address, from the right, that is not one of our proxies.

    `forwarded_for` is every X-Forwarded-For line in the order received: together they
    are one list (RFC 7230 §3.2.2, as RFC 7239 reads Forwarded). Entries left of the
    client's were written by the client itself and are not believed. An entry our proxy
    could not name (`unknown`) ends the chain: the client's address is not known, and
    None says so rather than lending it the proxy's.
    """
    hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
    if peer is None or not hops or not is_trusted_proxy(peer, proxies):
        return peer
    for hop in reversed(hops):
        address = parse_hop(hop)
        if address is None:
            return None
        if not any(address in network for network in proxies):
            return str(address)
    # Proxies all the way: the left-most is as near the client as anyone saw.
    return str(parse_hop(hops[0]))


def forwarded_proto(lines: Iterable[str]) -> str:
    """X-Forwarded-Proto as our proxy set it: the right-most value; the ones before it
    may come from the client."""
    values = [value.strip().lower() for line in lines for value in line.split(",")]
    values = [value for value in values if value]
    return values[-1] if values else ""


def caller_address(connection: HTTPConnection, proxies: Sequence[IPNetwork]) -> str | None:
    """The address of whoever sent this request, as `client_address` reads it."""
    peer = connection.client.host if connection.client else None
    return client_address(peer, connection.headers.getlist("x-forwarded-for"), proxies)
