"""Freeing the seat against a hostile server: clocks that are wrong, answers replayed, the
product's own code failing."""

from __future__ import annotations

import pytest

from callhome_client import AnswerMismatchError, ClockSkewError
from client_support import ClientFactory
from hostile_server import HostileServer, Misbehaviour

SIX_MINUTES_S = 6 * 60.0


@pytest.mark.parametrize("server_ahead_s", [-SIX_MINUTES_S, SIX_MINUTES_S], ids=["fast", "slow"])
def test_a_clock_minutes_off_frees_the_seat_and_drops_the_kept_verdict(
    make_client: ClientFactory, server: HostileServer, server_ahead_s: float
) -> None:
    make_client().check_in(user_count=1)
    # The machine's clock has since gone wrong; an uninstaller, a new process, frees the seat.
    server.clock_offset_s = server_ahead_s
    uninstaller = make_client()

    freed = uninstaller.deactivate()

    assert freed.status == "deactivated" and freed.seat_free
    assert uninstaller.cached_verdict() is None
    assert make_client().cached_verdict() is None, "the kept verdict is gone from the file too"


def test_a_clock_days_off_is_refused_as_broken_and_the_verdict_kept(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    server.clock_offset_s = 2 * 86400.0

    with pytest.raises(ClockSkewError, match="check the clock"):
        client.deactivate()
    assert client.cached_verdict() is not None


def test_a_replayed_deactivation_answer_is_refused_and_the_verdict_kept(
    make_client: ClientFactory, server: HostileServer
) -> None:
    client = make_client()
    client.deactivate()
    client.check_in(user_count=1)  # seated again
    server.misbehaviour = Misbehaviour.REPLAY

    with pytest.raises(AnswerMismatchError):
        client.deactivate()
    assert client.cached_verdict() is not None


def test_a_failing_computer_id_source_reaches_the_product_and_keeps_the_verdict(
    make_client: ClientFactory, server: HostileServer
) -> None:
    make_client().check_in(user_count=1)

    def broken_source() -> str:
        raise OSError("the product's ID store is unreadable")

    with pytest.raises(OSError, match="ID store"):
        make_client(computer_id=broken_source).deactivate()
    assert make_client().cached_verdict() is not None
