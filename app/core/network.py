"""Which address a request came from: the peer, or a trusted proxy's X-Forwarded-For."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from app.core.settings import IPNetwork


def is_trusted_proxy(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: Sequence[IPNetwork]
) -> str | None:
    """The first address, from the right, that is not one of our proxies.

    Entries left of it were written by the client itself and are not believed.
    """
    if peer is None or not forwarded_for or not is_trusted_proxy(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not is_trusted_proxy(hop, proxies):
            return hop
    return hops[0]
