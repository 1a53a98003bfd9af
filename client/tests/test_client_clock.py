"""The machine's clock: fast, slow and set back, judged against the server's time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callhome_client import ClockSkewError, NoTrustedVerdict
from client_support import ClientFactory, FakeClock
from hostile_server import HostileServer, Misbehaviour

SIX_MINUTES_S = 6 * 60.0


@pytest.mark.parametrize("server_ahead_s", [-SIX_MINUTES_S, SIX_MINUTES_S], ids=["fast", "slow"])
def test_a_clock_minutes_off_checks_in_and_keeps_its_offline_verdict(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock, server_ahead_s: float
) -> None:
    server.clock_offset_s = server_ahead_s
    client = make_client()

    verdict = client.check_in(user_count=1)

    assert verdict.licensed and not verdict.cached
    assert verdict.server_time_at == clock.now + timedelta(seconds=server_ahead_s)
    # The lease runs by the server's clock, on this run and after a restart.
    server.misbehaviour = Misbehaviour.UNAVAILABLE_503
    assert client.check_in(user_count=1).cached
    clock.advance(server.lease.total_seconds() - 1)
    assert make_client().check_in(user_count=1).cached
    clock.advance(1)
    with pytest.raises(NoTrustedVerdict):
        make_client().check_in(user_count=1)


def test_a_clock_days_off_is_refused_as_broken(
    make_client: ClientFactory, server: HostileServer
) -> None:
    server.clock_offset_s = 2 * 86400.0

    with pytest.raises(ClockSkewError, match="check the clock"):
        make_client().check_in(user_count=1)


def test_a_clock_set_back_after_a_restart_gets_no_offline_verdict(
    make_client: ClientFactory, clock: FakeClock, closed_url: str
) -> None:
    make_client().check_in(user_count=1)
    clock.advance(86400)
    clock.set_back(30 * 86400)

    with pytest.raises(NoTrustedVerdict):
        make_client(base_url=closed_url).check_in(user_count=1)

    clock.advance(30 * 86400)  # the clock is right again: the lease still runs
    assert make_client(base_url=closed_url).check_in(user_count=1).cached


def test_within_a_run_a_clock_set_back_does_not_stretch_the_lease(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    server.misbehaviour = Misbehaviour.UNAVAILABLE_503
    clock.set_back(30 * 86400)
    assert client.check_in(user_count=1).cached

    # eight days pass (the lease is seven); the wall clock still shows three weeks ago
    clock.advance(8 * 86400)

    with pytest.raises(NoTrustedVerdict):
        client.check_in(user_count=1)


def test_a_wall_clock_jump_does_not_lengthen_a_retry_after_wait(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    server.misbehaviour = Misbehaviour.UNAVAILABLE_503
    client.check_in(user_count=1)
    clock.set_back(3600)

    assert client.seconds_until_callable() == server.retry_after_s
