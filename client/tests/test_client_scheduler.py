"""The scheduler: the server's rhythm with jitter, capped backoff, Retry-After, stop."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest

from callhome_client import (
    AsyncCheckInLoop,
    AsyncClient,
    CallhomeError,
    CheckInLoop,
    CheckInRhythm,
    Client,
    NoTrustedVerdict,
    Verdict,
)
from callhome_client._constants import BACKOFF_BASE_S, BACKOFF_CAP_S
from client_support import FakeClock, client_arguments
from hostile_server import HostileServer, Misbehaviour


class Extreme(random.Random):
    """Always draws the upper (or lower) end of a range."""

    def __init__(self, upper: bool) -> None:
        super().__init__()
        self.upper = upper

    def uniform(self, a: float, b: float) -> float:
        return b if self.upper else a


@pytest.mark.parametrize("upper", [True, False])
def test_backoff_doubles_with_each_failure_and_stops_at_the_cap(upper: bool) -> None:
    rhythm = CheckInRhythm(Extreme(upper))

    delays = [rhythm.after_failure() for _ in range(12)]

    assert all(later >= earlier for earlier, later in zip(delays, delays[1:]))
    assert delays[1] == 2 * delays[0]
    assert max(delays) <= BACKOFF_CAP_S
    assert delays[-1] == delays[-2] == (BACKOFF_CAP_S if upper else BACKOFF_CAP_S / 2)
    assert delays[0] == (BACKOFF_BASE_S if upper else BACKOFF_BASE_S / 2)


def test_backoff_waits_at_least_as_long_as_retry_after_asks() -> None:
    assert CheckInRhythm(Extreme(upper=True)).after_failure(wait_at_least_s=900) == 900


def test_next_check_in_is_honoured_with_ten_percent_jitter() -> None:
    rhythm = CheckInRhythm(random.Random(7))

    delays = [rhythm.after_success(6 * 3600) for _ in range(200)]

    assert all(0.9 * 6 * 3600 <= delay <= 1.1 * 6 * 3600 for delay in delays)
    assert max(delays) - min(delays) > 0.1 * 6 * 3600, "the fleet must be spread"


def test_a_success_resets_the_backoff() -> None:
    rhythm = CheckInRhythm(Extreme(upper=True))
    for _ in range(5):
        rhythm.after_failure()
    rhythm.after_success(3600)

    assert rhythm.after_failure() == BACKOFF_BASE_S


class Recorder:
    """Collects verdicts, errors and waits; ends the loop after a number of waits."""

    def __init__(self, waits: int) -> None:
        self.verdicts: list[Verdict] = []
        self.errors: list[CallhomeError] = []
        self.delays: list[float] = []
        self.waits = waits
        self.loop: Any = None

    def sleep(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        if len(self.delays) == self.waits:
            self.loop.stop()

    async def async_sleep(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        if len(self.delays) == self.waits:
            await self.loop.stop()


def _run_loop(kind: str, server: HostileServer, clock: FakeClock, recorder: Recorder) -> None:
    """Run the sync or the async loop with the recorder as its sleep, until it stops it."""
    callbacks: dict[str, Any] = {
        "on_verdict": recorder.verdicts.append,
        "on_error": recorder.errors.append,
        "user_count": lambda: 7,
        "rng": Extreme(upper=True),
    }
    if kind == "sync":
        with Client(**client_arguments(server, clock)) as client:
            recorder.loop = CheckInLoop(client, **callbacks)
            recorder.loop.run_forever(sleep=recorder.sleep)
        return

    async def run() -> None:
        async with AsyncClient(**client_arguments(server, clock)) as client:
            recorder.loop = AsyncCheckInLoop(client, **callbacks)
            await recorder.loop.run_forever(sleep=recorder.async_sleep)

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_loop_backs_off_while_the_server_fails_then_keeps_its_rhythm(
    kind: str, server: HostileServer, clock: FakeClock
) -> None:
    server.script(Misbehaviour.ERROR_500, Misbehaviour.ERROR_500, Misbehaviour.ERROR_500)
    recorder = Recorder(waits=5)

    _run_loop(kind, server, clock, recorder)

    assert recorder.delays[:3] == [BACKOFF_BASE_S, 2 * BACKOFF_BASE_S, 4 * BACKOFF_BASE_S]
    assert recorder.delays[3:] == [1.1 * server.next_check_in_s] * 2
    assert [type(error) for error in recorder.errors] == [NoTrustedVerdict] * 3
    assert len(recorder.verdicts) == 2 and not recorder.verdicts[0].cached
    assert len(server.requests) == 5


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_loop_waits_out_retry_after_before_calling_again(
    kind: str, server: HostileServer, clock: FakeClock
) -> None:
    server.retry_after_s = 1800
    server.script(Misbehaviour.NONE, Misbehaviour.UNAVAILABLE_503)
    recorder = Recorder(waits=2)

    _run_loop(kind, server, clock, recorder)

    assert recorder.delays[1] == 1800
    assert recorder.verdicts[1].cached, "the cached verdict is handed on while the server rests"


def test_the_background_thread_delivers_verdicts_and_stops_at_once(
    server: HostileServer, clock: FakeClock
) -> None:
    delivered = threading.Event()
    with Client(**client_arguments(server, clock)) as client:
        loop = CheckInLoop(client, lambda verdict: delivered.set(), user_count=lambda: 1)
        loop.start()
        assert delivered.wait(5)

        started_at = time.monotonic()
        loop.stop()

    assert time.monotonic() - started_at < 1, "stop() must cut the six-hour wait short"
    assert len(server.requests) == 1


async def test_the_asyncio_task_delivers_verdicts_and_stops_at_once(
    server: HostileServer, clock: FakeClock
) -> None:
    delivered = asyncio.Event()
    async with AsyncClient(**client_arguments(server, clock)) as client:
        loop = AsyncCheckInLoop(client, lambda verdict: delivered.set(), user_count=lambda: 1)
        task = loop.start()
        await asyncio.wait_for(delivered.wait(), 5)

        await asyncio.wait_for(loop.stop(), 1)

    assert task.done()
    assert len(server.requests) == 1


class Flaky:
    """A product callable that raises its first `failures` calls, then returns `value`."""

    def __init__(self, failures: int, value: int = 7) -> None:
        self.failures = failures
        self.value = value
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("the product's user database is locked")
        return self.value


def _always_raises(argument: object) -> None:
    raise ValueError("a bug in the product's callback")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_loop_survives_product_and_network_exceptions_and_sees_a_later_suspension(
    kind: str, server: HostileServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """User count raising, a broken encoding, a 500, callbacks raising: the loop goes on."""
    server.script(Misbehaviour.BAD_GZIP, Misbehaviour.ERROR_500)
    user_count = Flaky(failures=2)
    verdicts: list[Verdict] = []
    delays: list[float] = []
    loop: Any = None

    def on_verdict(verdict: Verdict) -> None:
        verdicts.append(verdict)
        raise ValueError("a bug in the product's verdict handler")

    def record(delay_s: float) -> bool:
        delays.append(delay_s)
        if len(delays) == 5:  # after the first good verdict, the vendor suspends the licence
            server.licence_status = "suspended"
        return len(delays) == 6

    callbacks: dict[str, Any] = {
        "on_verdict": on_verdict,
        "on_error": _always_raises,
        "user_count": user_count,
        "rng": Extreme(upper=True),
    }
    if kind == "sync":
        with Client(**client_arguments(server, clock)) as client:
            loop = CheckInLoop(client, **callbacks)
            loop.run_forever(sleep=lambda delay_s: record(delay_s) and loop.stop())
    else:

        async def run() -> None:
            async with AsyncClient(**client_arguments(server, clock)) as client:
                loop = AsyncCheckInLoop(client, **callbacks)

                async def sleep(delay_s: float) -> None:
                    if record(delay_s):
                        await loop.stop()

                await loop.run_forever(sleep=sleep)

        asyncio.run(run())

    # two user-count failures, a body that cannot be decoded, a 500: four backoffs
    assert delays[:4] == [BACKOFF_BASE_S * 2**failure for failure in range(4)]
    assert delays[4:] == [1.1 * server.next_check_in_s] * 2
    assert len(server.requests) == 4, "the loop kept checking after every failure"
    assert [verdict.licence_status for verdict in verdicts] == ["valid", "suspended"]
    logged = caplog.text
    assert "user database is locked" in logged and "verdict handler" in logged
    assert "DecodingError" in logged


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_first_verdict_hook_runs_once_with_the_first_verdict(
    kind: str, server: HostileServer, clock: FakeClock
) -> None:
    server.script(Misbehaviour.ERROR_500)
    firsts: list[Verdict] = []
    recorder = Recorder(waits=3)
    callbacks: dict[str, Any] = {
        "on_verdict": recorder.verdicts.append,
        "on_error": recorder.errors.append,
        "on_first_verdict": firsts.append,
        "user_count": lambda: 7,
    }
    if kind == "sync":
        with Client(**client_arguments(server, clock)) as client:
            recorder.loop = CheckInLoop(client, **callbacks)
            recorder.loop.run_forever(sleep=recorder.sleep)
    else:

        async def run() -> None:
            async with AsyncClient(**client_arguments(server, clock)) as client:
                recorder.loop = AsyncCheckInLoop(client, **callbacks)
                await recorder.loop.run_forever(sleep=recorder.async_sleep)

        asyncio.run(run())

    assert len(recorder.verdicts) == 2
    assert firsts == recorder.verdicts[:1]


def test_a_loop_started_after_a_check_in_by_hand_does_not_call_again_at_once(
    server: HostileServer, clock: FakeClock
) -> None:
    """Start-up makes exactly one check-in: the loop takes over the rhythm from it."""
    with Client(**client_arguments(server, clock)) as client:
        verdict = client.check_in(user_count=1)
        loop = CheckInLoop(client, lambda verdict: None, user_count=lambda: 1)
        loop.start(after=verdict)
        time.sleep(0.5)
        requests_at_start = len(server.requests)
        loop.stop()

    assert requests_at_start == 1


async def test_an_asyncio_loop_started_after_a_check_in_by_hand_does_not_call_again_at_once(
    server: HostileServer, clock: FakeClock
) -> None:
    async with AsyncClient(**client_arguments(server, clock)) as client:
        verdict = await client.check_in(user_count=1)
        loop = AsyncCheckInLoop(client, lambda verdict: None, user_count=lambda: 1)
        loop.start(after=verdict)
        await asyncio.sleep(0.5)
        requests_at_start = len(server.requests)
        await loop.stop()

    assert requests_at_start == 1
