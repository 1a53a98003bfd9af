"""A network is named by its /24 (IPv4) or /48 (IPv6): two addresses of one network share
a net_id within a licence, and nothing that is not an address is named at all."""

from __future__ import annotations

import uuid

import pytest

from app.core.pseudonyms import net_id, network_prefix

DAY_KEY = bytes(range(32))
LICENCE = uuid.UUID(int=7)


def named(address: str) -> str:
    return net_id(DAY_KEY, LICENCE, address)


def test_an_ipv4_network_is_its_24() -> None:
    assert named("203.0.113.5") == named("203.0.113.250")
    assert named("203.0.113.5") != named("203.0.114.5")


def test_an_ipv4_address_mapped_into_ipv6_is_the_same_network() -> None:
    assert named("::ffff:203.0.113.5") == named("203.0.113.9")
    assert named("::FFFF:203.0.113.5") == named("203.0.113.9")


def test_an_ipv6_network_is_its_48() -> None:
    assert named("2001:db8:1::1") == named("2001:db8:1:ffff::2")
    assert named("2001:db8:1::1") == named("2001:DB8:1::1")
    assert named("2001:db8:1::1") != named("2001:db8:2::1")
    # A link-local address's zone names an interface, not a network.
    assert named("fe80::1%eth0") == named("fe80::2")


def test_the_same_network_is_unrelated_across_licences() -> None:
    assert net_id(DAY_KEY, uuid.UUID(int=8), "203.0.113.5") != named("203.0.113.5")


@pytest.mark.parametrize(
    "text",
    [
        "unknown",
        "",
        " 203.0.113.5",
        "203.0.113",
        "256.1.1.1",
        "010.1.2.3",
        "1::2::3",
        "203.0.113.5:80",
        "[::1]",
        "203.0.113.5\n",
    ],
)
def test_what_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        network_prefix(text)
