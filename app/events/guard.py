"""Where webhooks may go: https to public addresses only, checked when an endpoint is
added and again at every delivery, on the addresses then resolved (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from app.core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class Refused(Exception):
    """A URL or address webhooks may not go to; the message names the rule, not the input."""


@dataclass(frozen=True)
class Target:
    """A vetted URL: where to connect (the address), and what to call the host (SNI, Host)."""

    url: SplitResult
    host: str
    port: int
    address: IPAddress

    @property
    def connect_url(self) -> str:
        """The URL with the vetted address in place of the name, so no second lookup happens."""
        address = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        path = self.url.path or "/"
        query = f"?{self.url.query}" if self.url.query else ""
        return f"{self.url.scheme}://{address}:{self.port}{path}{query}"

    @property
    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def parse_url(url: str, settings: Settings) -> SplitResult:
    """The rules a URL must meet before any lookup."""
    if len(url) > MAX_URL_LENGTH or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise Refused("The URL is too long or holds spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise Refused("Webhook URLs use https")
    if parts.scheme == "http" and not settings.webhook_allow_http:
        raise Refused("Webhook URLs use https")
    if parts.username is not None or parts.password is not None:
        raise Refused("Webhook URLs carry no user name or password")
    if parts.fragment:
        raise Refused("Webhook URLs carry no fragment")
    if not parts.hostname:
        raise Refused("The URL names no host")
    try:
        _ = parts.port
    except ValueError as error:
        raise Refused("The URL's port is not a port") from error
    return parts


def address_allowed(address: IPAddress, settings: Settings) -> bool:
    """Public unicast addresses; loopback only with the test switch; private networks,
    link-local (cloud metadata) and the rest only where the operator allowed a CIDR."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in settings.webhook_allowed_cidrs):
        return True
    if address.is_loopback:
        return settings.webhook_allow_http
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as error:
        raise Refused("The URL's host does not resolve") from error
    # getaddrinfo's own scope suffix (fe80::1%eth0) is dropped: such addresses are refused anyway.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def vet(url: str, settings: Settings) -> Target:
    """Resolve the URL's host and refuse it unless every address it resolves to is allowed:
    one private address among public ones is enough to refuse."""
    parts = parse_url(url, settings)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(parts.hostname, port)
    if not addresses or not all(address_allowed(address, settings) for address in addresses):
        raise Refused("The URL resolves to an address webhooks may not reach")
    if parts.scheme == "http" and not all(address.is_loopback for address in addresses):
        raise Refused("Plain http is for loopback test receivers only")
    return Target(parts, parts.hostname, port, addresses[0])
