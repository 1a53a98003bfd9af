"""The machine's clock: fast, slow, set back and run ahead, judged against the server's time
and the latest moment this machine has seen."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

import pytest

from callhome_client import AnswerMismatchError, ClockSkewError, NoTrustedVerdict, Verdict
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


DAY_S = 86400.0


def _offline(make_client: ClientFactory, closed_url: str) -> Verdict:
    """A restart while the server is down: the kept verdict, or NoTrustedVerdict."""
    verdict: Verdict = make_client(base_url=closed_url).check_in(user_count=1)
    return verdict


def test_a_lease_seen_lapsed_stays_lapsed_when_the_clock_is_set_back_after_a_restart(
    make_client: ClientFactory,
    server: HostileServer,
    clock: FakeClock,
    closed_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_client().check_in(user_count=1)
    clock.advance(server.lease.total_seconds() - 30)
    assert _offline(make_client, closed_url).cached
    clock.advance(30)
    with pytest.raises(NoTrustedVerdict):
        _offline(make_client, closed_url)

    # within the few minutes a clock correction may take back: judged as of the lapse
    clock.set_back(120)
    with pytest.raises(NoTrustedVerdict):
        _offline(make_client, closed_url)
    assert "clock is behind" not in caplog.text
    # further back, while the lease would still run: refused as a clock set back
    clock.set_back(DAY_S)
    with pytest.raises(NoTrustedVerdict):
        _offline(make_client, closed_url)
    assert "clock is behind" in caplog.text

    clock.set_forward(DAY_S + 120)  # the clock is right again and the server answers
    assert not make_client().check_in(user_count=1).cached
    assert _offline(make_client, closed_url).cached


def test_the_clock_seen_at_an_offline_check_is_kept_across_restarts(
    make_client: ClientFactory, clock: FakeClock, closed_url: str
) -> None:
    make_client().check_in(user_count=1)
    clock.advance(3 * DAY_S)
    assert _offline(make_client, closed_url).cached

    clock.set_back(2 * DAY_S)  # a day after the check-in, within the lease
    with pytest.raises(NoTrustedVerdict):
        _offline(make_client, closed_url)

    clock.set_forward(2 * DAY_S)
    assert _offline(make_client, closed_url).cached


def test_a_clock_that_ran_ahead_costs_the_offline_verdict_only_until_the_server_answers(
    make_client: ClientFactory, clock: FakeClock, closed_url: str
) -> None:
    make_client().check_in(user_count=1)
    clock.set_forward(3 * DAY_S)
    assert _offline(make_client, closed_url).cached
    clock.set_back(3 * DAY_S)  # put right: to the SDK, a clock set back three days
    with pytest.raises(NoTrustedVerdict):
        _offline(make_client, closed_url)

    # a fresh answer is the true time: the moment seen on the fast clock is disproved
    clock.advance(60)
    assert not make_client().check_in(user_count=1).cached
    assert _offline(make_client, closed_url).cached


def test_a_replayed_answer_does_not_take_back_the_clock_seen(
    make_client: ClientFactory, server: HostileServer, clock: FakeClock, closed_url: str
) -> None:
    make_client().check_in(user_count=1)
    clock.advance(3 * DAY_S)
    assert _offline(make_client, closed_url).cached
    server.misbehaviour = Misbehaviour.REPLAY  # the first answer again, three days on

    with pytest.raises(AnswerMismatchError):
        make_client().check_in(user_count=1)

    clock.set_back(2 * DAY_S)
    with pytest.raises(NoTrustedVerdict):
        _offline(make_client, closed_url)


@pytest.mark.parametrize("broken", ["disk full", "read-only"], ids=["disk-full", "read-only"])
def test_a_record_that_cannot_be_written_keeps_the_offline_verdict_and_the_lapse(
    make_client: ClientFactory,
    server: HostileServer,
    clock: FakeClock,
    closed_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    broken: str,
) -> None:
    make_client().check_in(user_count=1)
    client = make_client(base_url=closed_url)
    if broken == "disk full":
        monkeypatch.setattr(os, "fsync", _failing(errno.ENOSPC))
    else:
        monkeypatch.setattr(tempfile, "mkstemp", _failing(errno.EROFS))

    # a product asking for its verdict every second: the clock seen is written once a minute
    for _ in range(100):
        clock.advance(1)
        assert client.cached_verdict() is not None
    assert caplog.text.count("could not write") == 1, "one failed write, not one per check"

    clock.advance(server.lease.total_seconds())
    assert client.cached_verdict() is None
    clock.set_back(120)
    assert client.cached_verdict() is None, "unwritten, the lapse still holds in this run"


def _failing(code: int) -> Callable[..., NoReturn]:
    def fail(*arguments: object, **keywords: object) -> NoReturn:
        raise OSError(code, os.strerror(code))

    return fail
