"""The client's address behind trusted proxies, and the scheme they report, case by case."""

from __future__ import annotations

import ipaddress

import pytest

from app.core.network import client_address, forwarded_proto

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]

# (peer, X-Forwarded-For lines in the order received, the client's address)
CASES = [
    ("10.0.0.1", [], "10.0.0.1"),
    ("203.0.113.9", ["198.51.100.7"], "203.0.113.9"),  # an untrusted peer says nothing
    ("10.0.0.1", ["198.51.100.7"], "198.51.100.7"),
    ("10.0.0.1", ["6.6.6.6, 198.51.100.7, 10.0.0.2"], "198.51.100.7"),
    # Several lines are one list: a line of only proxies continues into the earlier ones.
    ("10.0.0.1", ["198.51.100.7", "10.0.0.3, 10.0.0.2"], "198.51.100.7"),
    ("10.0.0.1", ["6.6.6.6", "198.51.100.7", "10.0.0.2"], "198.51.100.7"),
    ("10.0.0.1", ["198.51.100.7, 10.0.0.5", "10.0.0.2"], "198.51.100.7"),
    # Ports are not part of the address.
    ("10.0.0.1", ["198.51.100.7:52311"], "198.51.100.7"),
    ("10.0.0.1", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("10.0.0.1", ["2001:db8::7"], "2001:db8::7"),
    ("10.0.0.1", ["198.51.100.7, 10.0.0.2:8080"], "198.51.100.7"),
    ("fd00::1", ['"[2001:db8::7]:443"'], "2001:db8::7"),
    # An entry a proxy could not name ends the chain: the client is not known.
    ("10.0.0.1", ["unknown"], None),
    ("10.0.0.1", ["198.51.100.7, unknown, 10.0.0.2"], None),
    ("10.0.0.1", ["_hidden"], None),
    # ...but what lies left of the client was written by the client, unread.
    ("10.0.0.1", ["garbage, 198.51.100.7"], "198.51.100.7"),
    # Proxies all the way: the left-most is as near the client as anyone saw.
    ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
    ("10.0.0.1", ["", " "], "10.0.0.1"),
    (None, ["198.51.100.7"], None),
]


@pytest.mark.parametrize(("peer", "lines", "expected"), CASES)
def test_client_address(peer: str | None, lines: list[str], expected: str | None) -> None:
    assert client_address(peer, lines, PROXIES) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], ""),
        (["https"], "https"),
        (["HTTPS"], "https"),
        (["https, http"], "http"),  # the client wrote the left-most
        (["http", "https"], "https"),
        (["https", "http"], "http"),
        (["https, "], "https"),
    ],
)
def test_forwarded_proto_is_the_right_most(lines: list[str], expected: str) -> None:
    assert forwarded_proto(lines) == expected
