"""Update and feed news: verified, fresh, bound to the question, revalidated with ETags."""

from __future__ import annotations

from typing import Any

import pytest

from callhome_client import (
    AnswerMismatchError,
    ExpiredAnswerError,
    MalformedAnswerError,
    RequestRejected,
    RollbackError,
    SignatureError,
)
from client_support import LICENCE_KEY, VERSION, ClientFactory, FakeClock
from hostile_server import HostileServer


def test_check_updates_returns_the_signed_offer_and_revalidates_with_the_etag(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client()

    news = client.check_updates()
    again = client.check_updates()

    assert news.update is not None and news.update.version == "2.0.0"
    assert again == news
    first, second = server.news_requests[-2:]
    assert first["authorization"] == f"Licence {LICENCE_KEY}"
    assert "if-none-match" not in first and second["if-none-match"]


def test_check_feed_exposes_the_ordered_plan(make_client: ClientFactory) -> None:
    news = make_client().check_feed("spam", 41233)

    assert news.signature_set is not None
    assert [(step.from_version, step.to_version) for step in news.signature_set.plan] == [
        (41233, 41234),
        (41234, 41235),
        (41235, 41236),
    ]


def test_a_replayed_older_answer_is_refused_once_a_newer_one_is_trusted(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock
) -> None:
    client = make_client()
    client.check_updates()
    captured = _capture(server)
    clock.advance(3600)  # the next epoch: a newer answer is issued and trusted
    client.check_updates()
    server.news_replay = captured

    with pytest.raises(RollbackError):
        client.check_updates()
    # the refusal survives a restart: the newest trusted time is kept in the cache file
    with pytest.raises(RollbackError):
        make_client().check_updates()


def test_a_replayed_answer_is_refused_once_it_has_expired(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock
) -> None:
    captured = _capture(server)
    clock.advance(86400)
    server.news_replay = captured

    with pytest.raises(ExpiredAnswerError):
        make_client(cache_path=None).check_updates()


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda document: document.update(version="0.1"), AnswerMismatchError),
        (lambda document: document.update(product="other"), AnswerMismatchError),
        (lambda document: document.pop("issued_at"), MalformedAnswerError),
    ],
    ids=["other version", "other product", "undated"],
)
def test_an_answer_to_another_question_or_undated_is_refused(
    make_client: ClientFactory, server: HostileServer, edit: Any, error: type[Exception]
) -> None:
    server.news_edit = edit

    with pytest.raises(error):
        make_client().check_updates()


def test_an_unsigned_news_answer_is_refused(
    make_client: ClientFactory, server: HostileServer
) -> None:
    status, _, body = _capture(server)
    server.news_replay = (status, {"Content-Type": "application/json"}, body)

    with pytest.raises(SignatureError):
        make_client().check_updates()


def test_a_refused_licence_raises_request_rejected(
    make_client: ClientFactory, server: HostileServer
) -> None:
    server.news_replay = (401, {"Content-Type": "application/problem+json"}, b"{}")

    with pytest.raises(RequestRejected):
        make_client().check_feed("spam", 1)


def _capture(server: HostileServer) -> tuple[int, dict[str, str], bytes]:
    """The server's answer to the client's update question now, as sent."""
    return server.news_answer("/v1/updates/mailserver", {"version": VERSION})
