"""Check-ins against a hostile server over a real socket, with the sync and the async client."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from callhome_client import (
    AnswerMismatchError,
    AsyncClient,
    Client,
    ClockSkewError,
    ConfigurationError,
    ExpiredAnswerError,
    MalformedAnswerError,
    NoTrustedVerdict,
    RequestRejected,
    RollbackError,
    SignatureError,
    UnknownKeyError,
    UntrustedAnswer,
    Verdict,
)
from callhome_client._core import parse_retry_after
from client_support import COMPUTER_ID, LICENCE_KEY, ClientFactory, FakeClock, client_arguments
from hostile_server import CONTRACT_FIELDS, HostileServer, Misbehaviour, public_key_base64

TRANSIENT_FAILURES = [
    Misbehaviour.ERROR_500,
    Misbehaviour.UNAVAILABLE_503,
    Misbehaviour.RATE_LIMITED_429,
    Misbehaviour.SLOW,
    Misbehaviour.BAD_GZIP,
]


def test_a_good_answer_becomes_a_typed_verdict(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock
) -> None:
    client = make_client()

    verdict = client.check_in(user_count=12, signatures={"spam": 41234}, channel="beta")

    assert verdict.licence_status == "valid"
    assert verdict.licensed
    assert verdict.cached is False
    assert verdict.max_users == 50
    assert verdict.users_over_limit is False
    assert verdict.expires_at is not None and verdict.expires_at.year == 2027
    assert (verdict.seats.allowed, verdict.seats.active, verdict.seats.seat) == (3, 1, "granted")
    assert verdict.update is not None and verdict.update.version == "2.0.0"
    spam = verdict.signatures["spam"]
    assert spam.version == 41235
    assert spam.delta is not None and spam.delta.from_version == 41234
    assert verdict.next_check_in_s == 6 * 3600
    assert verdict.server_time_at == clock.now
    assert verdict.lease_expires_at == clock.now + timedelta(days=7)


def test_the_request_holds_only_contract_fields_and_a_fresh_nonce(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client()

    client.check_in(user_count=3)
    client.check_in(user_count=4, signatures={"antivirus": 7}, channel="beta")

    first, second = (json.loads(body) for body in server.requests)
    assert set(first) == {"licence_key", "product", "version", "computer_id", "user_count", "nonce"}
    assert set(second) <= CONTRACT_FIELDS and {"channel", "signatures"} <= set(second)
    assert first["computer_id"] == COMPUTER_ID
    assert first["nonce"] != second["nonce"]
    assert 16 <= len(first["nonce"]) <= 64


@pytest.mark.parametrize(
    ("misbehaviour", "error"),
    [
        (Misbehaviour.WRONG_KEY, UnknownKeyError),
        (Misbehaviour.FORGED_KEYID, SignatureError),
        (Misbehaviour.TAMPERED_BODY, SignatureError),
        (Misbehaviour.UNSIGNED, SignatureError),
        (Misbehaviour.REPLAY, AnswerMismatchError),
        (Misbehaviour.WRONG_NONCE, AnswerMismatchError),
        (Misbehaviour.WRONG_DIGEST, AnswerMismatchError),
        (Misbehaviour.STALE, ClockSkewError),
        (Misbehaviour.EXPIRED, ExpiredAnswerError),
        (Misbehaviour.BACKDATED, RollbackError),
        (Misbehaviour.UNDATED, MalformedAnswerError),
        (Misbehaviour.NOT_JSON, MalformedAnswerError),
        (Misbehaviour.MISSING_FIELD, MalformedAnswerError),
        (Misbehaviour.HUGE, SignatureError),
    ],
    ids=lambda value: value.name if isinstance(value, Misbehaviour) else "",
)
def test_a_forged_or_foreign_answer_is_refused_and_never_cached(
    make_client: ClientFactory,
    server: HostileServer,
    misbehaviour: Misbehaviour,
    error: type[UntrustedAnswer],
) -> None:
    client = make_client()
    good = client.check_in(user_count=1)
    server.misbehaviour = misbehaviour

    with pytest.raises(error):
        client.check_in(user_count=1)

    # the last good verdict is still the one in force, in memory and in the file
    assert client.cached_verdict() == _as_cached(good)
    restarted = make_client()
    assert restarted.cached_verdict() == _as_cached(good)


def test_a_rotated_key_is_accepted_when_pinned_beside_the_old_one(
    make_client: ClientFactory, server: HostileServer
) -> None:
    old_key = public_key_base64(server.other_key)
    client = make_client(public_keys=[old_key, server.public_key])

    assert client.check_in(user_count=1).licensed


@pytest.mark.parametrize("misbehaviour", TRANSIENT_FAILURES, ids=lambda value: value.name)
def test_a_transient_failure_returns_the_cached_verdict_while_the_lease_runs(
    make_client: ClientFactory,
    server: HostileServer,
    misbehaviour: Misbehaviour,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client()
    good = client.check_in(user_count=1)
    server.misbehaviour = misbehaviour
    caplog.set_level(logging.INFO, logger="callhome_client")

    verdict = client.check_in(user_count=1)

    assert verdict.cached is True
    assert verdict == _as_cached(good)
    # The product's log says why its verdict is the cached one, and names nothing.
    [failure] = [line for line in caplog.messages if "cached verdict stands" in line]
    assert "answered" in failure or "network failure" in failure, failure
    assert LICENCE_KEY not in caplog.text
    assert COMPUTER_ID not in caplog.text


@pytest.mark.parametrize("misbehaviour", TRANSIENT_FAILURES, ids=lambda value: value.name)
def test_a_transient_failure_without_a_cached_verdict_raises_no_trusted_verdict(
    make_client: ClientFactory, server: HostileServer, misbehaviour: Misbehaviour
) -> None:
    server.misbehaviour = misbehaviour

    with pytest.raises(NoTrustedVerdict):
        make_client().check_in(user_count=1)


def test_a_refused_connection_falls_back_to_the_cache_file(
    make_client: ClientFactory, closed_url: str
) -> None:
    good = make_client().check_in(user_count=1)
    offline = make_client(base_url=closed_url)

    assert offline.check_in(user_count=1) == _as_cached(good)


def test_a_refused_connection_without_cache_raises_no_trusted_verdict(
    make_client: ClientFactory, closed_url: str
) -> None:
    with pytest.raises(NoTrustedVerdict):
        make_client(base_url=closed_url, cache_path=None).check_in(user_count=1)


def test_the_cached_verdict_is_trusted_until_the_lease_expires_and_not_after(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    server.misbehaviour = Misbehaviour.ERROR_500

    clock.advance(timedelta(days=7).total_seconds() - 1)
    assert client.check_in(user_count=1).cached
    clock.advance(1)
    with pytest.raises(NoTrustedVerdict):
        client.check_in(user_count=1)


@pytest.mark.parametrize(
    "misbehaviour",
    [Misbehaviour.UNAVAILABLE_503, Misbehaviour.RATE_LIMITED_429],
    ids=lambda misbehaviour: misbehaviour.name,
)
def test_retry_after_keeps_the_client_away_from_the_server(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock, misbehaviour: Misbehaviour
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    server.misbehaviour = misbehaviour
    client.check_in(user_count=1)
    server.misbehaviour = Misbehaviour.NONE
    calls_so_far = len(server.requests)

    clock.advance(server.retry_after_s - 1)
    assert client.check_in(user_count=1).cached
    assert len(server.requests) == calls_so_far
    assert client.seconds_until_callable() == 1

    clock.advance(1)
    assert client.check_in(user_count=1).cached is False
    assert len(server.requests) == calls_so_far + 1


def test_retry_after_without_a_cached_verdict_raises_and_says_how_long_to_wait(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client(cache_path=None)
    server.misbehaviour = Misbehaviour.UNAVAILABLE_503
    with pytest.raises(NoTrustedVerdict):
        client.check_in(user_count=1)

    with pytest.raises(NoTrustedVerdict) as raised:
        client.check_in(user_count=1)
    assert raised.value.retry_after_s == server.retry_after_s
    assert len(server.requests) == 1


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120),
        ("Mon, 23 Nov 2026 12:10:00 GMT", 600),
        ("Mon, 23 Nov 2026 11:00:00 GMT", 0),
        ("-5", 0),
        ("99999999", 86400),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_capped(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_an_injected_http_client_is_used_and_left_open(
    server: HostileServer, clock: FakeClock
) -> None:
    paths: list[str] = []
    with httpx.Client(
        event_hooks={"request": [lambda request: paths.append(request.url.path)]}
    ) as http:
        with Client(**client_arguments(server, clock), http_client=http) as client:
            client.check_in(user_count=1)
        assert not http.is_closed
    assert paths == ["/v1/ping"]


async def test_an_injected_async_http_client_is_used_and_left_open(
    server: HostileServer, clock: FakeClock
) -> None:
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        async with AsyncClient(**client_arguments(server, clock), http_client=http) as client:
            await client.check_in(user_count=1)
        assert not http.is_closed
    assert paths == ["/v1/ping"]


def test_a_rejected_request_is_raised_not_hidden_behind_the_cache(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    server.misbehaviour = Misbehaviour.REJECT_422

    with pytest.raises(RequestRejected, match="user_count is out of range") as raised:
        client.check_in(user_count=1)
    assert raised.value.status_code == 422


def test_the_computer_id_hook_may_be_a_callable(
    make_client: ClientFactory, server: HostileServer
) -> None:
    own_id = "product-own-id-0123456789"
    make_client(computer_id=lambda: own_id).check_in(user_count=1)

    assert json.loads(server.requests[0])["computer_id"] == own_id


def test_a_computer_id_hook_that_throws_reaches_the_product_and_the_next_check_in_works(
    make_client: ClientFactory, server: HostileServer
) -> None:
    answers: Iterator[str | Exception] = iter(
        [RuntimeError("the product's ID store is locked"), "product-own-id-0123456789"]
    )

    def flaky_source() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = make_client(computer_id=flaky_source)
    with pytest.raises(RuntimeError, match="ID store is locked"):
        client.check_in(user_count=1)
    assert server.requests == []

    assert client.check_in(user_count=1).licensed
    assert json.loads(server.requests[0])["computer_id"] == "product-own-id-0123456789"


def test_arguments_outside_the_contract_are_refused_before_anything_is_sent(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client()
    for bad_arguments in (
        {"user_count": -1},
        {"user_count": 1, "channel": "Beta Channel"},
        {"user_count": 1, "signatures": {"spam/../x": 1}},
    ):
        with pytest.raises(ConfigurationError):
            client.check_in(**bad_arguments)
    with pytest.raises(ConfigurationError):
        make_client(product="Mail Server")
    with pytest.raises(ConfigurationError):
        make_client(public_keys=["not base64!"])
    with pytest.raises(ConfigurationError):
        make_client(computer_id="has spaces in it, and an @")
    assert server.requests == []


def test_the_licence_key_never_reaches_a_log_line(
    make_client: ClientFactory, server: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    for misbehaviour in (Misbehaviour.ERROR_500, Misbehaviour.WRONG_KEY):
        server.misbehaviour = misbehaviour
        try:
            client.check_in(user_count=1)
        except UntrustedAnswer as error:
            assert LICENCE_KEY not in str(error)
    make_client(licence_key="ANOTHER-LICENCE-KEY").cached_verdict()

    assert caplog.records, "ignoring the other licence's cache should have been logged"
    assert LICENCE_KEY not in caplog.text
    assert COMPUTER_ID not in caplog.text


def _as_cached(verdict: Verdict) -> Verdict:
    return replace(verdict, cached=True)
