"""Whatever a signed answer holds, parsing it yields a verdict or MalformedAnswerError."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from callhome_client import MalformedAnswerError, Verdict
from callhome_client._models import parse_verdict
from client_support import FakeClock
from hostile_server import HostileServer

_REQUEST = {"user_count": 3, "nonce": "n" * 32, "signatures": {"spam": 41}}
_GOOD_DOCUMENT = HostileServer(FakeClock()).answer_document(_REQUEST, b"{}")

_PATHS = [
    ("licence",),
    ("licence", "status"),
    ("licence", "expires_at"),
    ("licence", "max_users"),
    ("licence", "users_over_limit"),
    ("licence", "machines"),
    ("licence", "machines", "allowed"),
    ("licence", "machines", "seat"),
    ("update",),
    ("update", "size"),
    ("update", "notes_url"),
    ("signatures",),
    ("signatures", "spam"),
    ("signatures", "spam", "delta"),
    ("signatures", "spam", "delta", "from"),
    ("next_check_in",),
    ("lease_expires",),
    ("server_time",),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z", fullmatch=True),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)


@given(path=st.sampled_from(_PATHS), value=json_values)
def test_any_value_in_any_field_is_a_verdict_or_a_malformed_answer(
    path: tuple[str, ...], value: Any
) -> None:
    document = copy.deepcopy(_GOOD_DOCUMENT)
    parent = document
    for name in path[:-1]:
        parent = parent[name]
    parent[path[-1]] = value

    try:
        verdict = parse_verdict(document, cached=False)
    except MalformedAnswerError:
        return
    assert isinstance(verdict, Verdict)


def test_the_good_document_parses() -> None:
    assert parse_verdict(_GOOD_DOCUMENT, cached=False).signatures["spam"].version == 42
