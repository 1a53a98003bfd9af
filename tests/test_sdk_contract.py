"""The SDK refuses at construction exactly what the server's ping contract refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from callhome_client import Client, ConfigurationError
from callhome_client._request import (
    check_channel,
    check_computer_id,
    check_licence_key,
    check_product,
    check_signatures,
    check_user_count,
    check_version,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.ping.schemas import PingRequest
from tests.support.pings import computer_id

VALID: dict[str, Any] = {
    "licence_key": "CONTRACT-TEST-KEY",
    "product": "mail",
    "version": "8.2.1",
    "computer_id": computer_id("pc"),
    "user_count": 3,
}

SDK_CHECKS: dict[str, Callable[[Any], None]] = {
    "licence_key": check_licence_key,
    "product": check_product,
    "version": check_version,
    "computer_id": check_computer_id,
    "user_count": check_user_count,
    "channel": check_channel,
    "signatures": check_signatures,
}

# Values on both sides of each field's edges, and the ones users have tripped over.
CASES: list[tuple[str, Any]] = [
    ("licence_key", "ABCD-EFGH"),
    ("licence_key", "ABCD-EFG"[:7]),
    ("licence_key", "K" * 128),
    ("licence_key", "K" * 129),
    ("licence_key", "LIZENZ-SCHLÜSSEL-1"),
    ("licence_key", "KEY WITH SPACES ok"),
    ("licence_key", "KEY-WITH-TAB\t1234"),
    ("licence_key", "KEY-\uff21\uff22CD-1234"),
    ("product", "mailserver"),
    ("product", "Mailserver"),
    ("product", "mail_server"),
    ("product", "m" * 32),
    ("product", "m" * 33),
    ("product", ""),
    ("version", "8.2.1"),
    ("version", "8.2.1 beta"),
    ("version", "8.2.1-beta.1+build.7"),
    ("version", "1!2.0.post1"),
    ("version", "v" * 32),
    ("version", "v" * 33),
    ("version", ""),
    ("version", "8.2.1/../x"),
    ("version", "8.2.1é"),
    ("computer_id", "c0ffee" * 3),
    ("computer_id", "c0ffee"),
    ("computer_id", "C:\\Users\\anna pc"),
    ("computer_id", "a" * 128),
    ("computer_id", "a" * 129),
    ("computer_id", "base64+/=_-0123456789"),
    ("user_count", 0),
    ("user_count", 10_000_000),
    ("user_count", 10_000_001),
    ("user_count", -1),
    ("user_count", True),
    ("channel", "stable"),
    ("channel", "Beta"),
    ("channel", "c" * 16),
    ("channel", "c" * 17),
    ("signatures", {"spam": 41234}),
    ("signatures", {"spam": -1}),
    ("signatures", {"spam": 2**53}),
    ("signatures", {"spam": 2**53 + 1}),
    ("signatures", {"Spam Feed": 1}),
    ("signatures", {f"feed{n}": n for n in range(16)}),
    ("signatures", {f"feed{n}": n for n in range(17)}),
]


def server_accepts(field: str, value: Any) -> bool:
    try:
        PingRequest.model_validate({**VALID, field: value})
    except ValidationError:
        return False
    return True


def sdk_accepts(field: str, value: Any) -> bool:
    try:
        SDK_CHECKS[field](value)
    except ConfigurationError:
        return False
    return True


@pytest.mark.parametrize(("field", "value"), CASES)
def test_the_sdk_and_the_server_agree_on_each_case(field: str, value: Any) -> None:
    assert sdk_accepts(field, value) == server_accepts(field, value)


@given(
    field=st.sampled_from(["licence_key", "product", "version", "computer_id", "channel"]),
    value=st.one_of(
        st.text(max_size=140),
        st.from_regex(r"[A-Za-z0-9.+!_\-/= ]{0,140}", fullmatch=True),
    ),
)
def test_the_sdk_and_the_server_agree_on_any_text(field: str, value: str) -> None:
    assert sdk_accepts(field, value) == server_accepts(field, value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"version": "8.2.1 beta"},
        {"licence_key": "LIZENZ-SCHLÜSSEL-1"},
        {"product": "Mail Server"},
        {"computer_id": "C:\\Users\\anna pc"},
    ],
)
def test_a_client_with_settings_the_server_always_refuses_is_not_built(
    overrides: dict[str, str],
) -> None:
    arguments = {
        "base_url": "http://127.0.0.1:9",
        "public_keys": ["A" * 43 + "="],
        **VALID,
        **overrides,
    }
    del arguments["user_count"]
    with pytest.raises(ConfigurationError):
        Client(**arguments)
