"""The check-in scheduler: calls at the server's rhythm and backs off while it fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypedDict, TypeVar, Union

from ._client import AsyncClient, Client
from ._constants import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    BACKOFF_JITTER_FRACTION,
    JITTER_FRACTION,
    MAX_BACKOFF_DOUBLINGS,
    MIN_CHECK_IN_INTERVAL_S,
)
from ._exceptions import CallhomeError
from ._models import Verdict
from ._request import check_channel

logger = logging.getLogger("callhome_client")

ClientT = TypeVar("ClientT", Client, AsyncClient)
VerdictCallback = Callable[[Verdict], object]
ErrorCallback = Callable[[CallhomeError], object]
SignaturesSource = Union[Callable[[], Mapping[str, int]], None]
_OutcomeT = TypeVar("_OutcomeT", Verdict, CallhomeError)


class _CheckInArguments(TypedDict):
    user_count: int
    signatures: Mapping[str, int] | None
    channel: str | None


class CheckInRhythm:
    """Decides how long to wait before the next check-in."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self.failures = 0

    def after_success(self, next_check_in_s: float) -> float:
        """The server's next_check_in, jittered by ±10% so a fleet does not call in step."""
        self.failures = 0
        spread = self._rng.uniform(1 - JITTER_FRACTION, 1 + JITTER_FRACTION)
        return max(MIN_CHECK_IN_INTERVAL_S, next_check_in_s * spread)

    def after_failure(self, wait_at_least_s: float = 0.0) -> float:
        """A backoff that doubles with each failure up to a cap, but no less than asked."""
        self.failures += 1
        doublings = min(self.failures - 1, MAX_BACKOFF_DOUBLINGS)
        backoff_s = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0**doublings)
        jittered_s = backoff_s * self._rng.uniform(1 - BACKOFF_JITTER_FRACTION, 1)
        return max(wait_at_least_s, jittered_s)


def _log_error(error: CallhomeError) -> None:
    logger.warning("callhome: check-in failed: %s", error)


def _call_product(callback: Callable[[_OutcomeT], object], argument: _OutcomeT) -> None:
    """Run a product callback; what it raises is logged, and the loop carries on."""
    try:
        callback(argument)
    except Exception:
        logger.exception("callhome: the product's %s callback raised", _name_of(callback))


def _name_of(callback: Callable[..., object]) -> str:
    return getattr(callback, "__qualname__", None) or type(callback).__qualname__


class _LoopBase(Generic[ClientT]):
    """What both loops share: the arguments of each check-in and what follows from it."""

    def __init__(
        self,
        client: ClientT,
        on_verdict: VerdictCallback,
        *,
        user_count: Callable[[], int],
        signatures: SignaturesSource = None,
        channel: str | None = None,
        on_error: ErrorCallback = _log_error,
        on_first_verdict: VerdictCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if channel is not None:
            check_channel(channel)
        self._client: ClientT = client
        self._on_verdict = on_verdict
        self._on_first_verdict = on_first_verdict
        self._user_count = user_count
        self._signatures = signatures
        self._channel = channel
        self._on_error = on_error
        self.rhythm = CheckInRhythm(rng)
        # a thread-safe flag, read by the async loop too (its reads never block)
        self._stop_requested = threading.Event()

    def _arguments(self) -> _CheckInArguments:
        """The check-in's arguments as they stand now (the user count changes over time)."""
        return {
            "user_count": self._user_count(),
            "signatures": None if self._signatures is None else self._signatures(),
            "channel": self._channel,
        }

    def _first_delay(self, after: Verdict | None) -> float | None:
        """The wait before the first call: none, or the rhythm after a check-in made by hand."""
        if after is None:
            return None
        if after.cached:
            return self.rhythm.after_failure(self._client.seconds_until_callable())
        return self.rhythm.after_success(after.next_check_in_s)

    def _delay_after(self, outcome: Verdict | Exception) -> float:
        """Hand the outcome to its callback and work out the wait before the next call.

        Anything but a fresh verdict backs off, an exception that is not the SDK's too
        (raised by the product's user count, say, or by the network stack): it is logged
        and the loop goes on, so a later suspension is still seen.
        """
        if isinstance(outcome, Verdict):
            if self._on_first_verdict is not None:
                on_first_verdict, self._on_first_verdict = self._on_first_verdict, None
                _call_product(on_first_verdict, outcome)
            _call_product(self._on_verdict, outcome)
            if not outcome.cached:
                return self.rhythm.after_success(outcome.next_check_in_s)
        elif isinstance(outcome, CallhomeError):
            _call_product(self._on_error, outcome)
        else:
            logger.error("callhome: check-in failed", exc_info=outcome)
        return self.rhythm.after_failure(self._client.seconds_until_callable())


class CheckInLoop(_LoopBase[Client]):
    """Checks in with a Client: run_forever() blocks, start()/stop() use a daemon thread.

    user_count (and signatures) are callables read at each check-in. on_verdict gets
    every verdict, cached ones included; on_first_verdict (once) the first of them;
    on_error every CallhomeError (logged by default). An exception from any of these
    callables, or from the network, is logged and backed off from: the loop never ends
    by itself.
    """

    _thread: threading.Thread | None = None

    def run_forever(
        self, sleep: Callable[[float], object] | None = None, *, after: Verdict | None = None
    ) -> None:
        """Check in, wait, and again, until stop() is called (sleep is for tests).

        after: the verdict of a check-in the product made by hand just now; the loop then
        waits the server's rhythm before its first call instead of calling again at once.
        """
        # waiting on the stop event lets stop() cut a wait of hours short
        wait = sleep or self._stop_requested.wait
        first_delay_s = self._first_delay(after)
        if first_delay_s is not None:
            wait(first_delay_s)
        while not self._stop_requested.is_set():
            wait(self._check_in_once())

    def _check_in_once(self) -> float:
        try:
            verdict = self._client.check_in(**self._arguments())
        except Exception as error:
            return self._delay_after(error)
        return self._delay_after(verdict)

    def start(self, *, after: Verdict | None = None) -> None:
        """Run the loop in a daemon thread, which does not hold up the product's exit."""
        if self._thread is not None:
            raise RuntimeError("the check-in thread is already running")
        self._stop_requested.clear()
        self._thread = threading.Thread(
            target=self.run_forever,
            kwargs={"after": after},
            name="callhome-check-in",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """End the loop after the check-in under way, and wait for the thread."""
        self._stop_requested.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


class AsyncCheckInLoop(_LoopBase[AsyncClient]):
    """Checks in with an AsyncClient: await run_forever(), or start() an asyncio task."""

    _task: asyncio.Task[None] | None = None

    async def run_forever(
        self,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        *,
        after: Verdict | None = None,
    ) -> None:
        """Check in, wait, and again, until stop() is called; see CheckInLoop.run_forever()."""
        first_delay_s = self._first_delay(after)
        if first_delay_s is not None:
            await sleep(first_delay_s)
        while not self._stop_requested.is_set():
            await sleep(await self._check_in_once())

    async def _check_in_once(self) -> float:
        try:
            verdict = await self._client.check_in(**self._arguments())
        except Exception as error:
            return self._delay_after(error)
        return self._delay_after(verdict)

    def start(self, *, after: Verdict | None = None) -> asyncio.Task[None]:
        """Run the loop as a task of the running event loop."""
        if self._task is not None:
            raise RuntimeError("the check-in task is already running")
        self._stop_requested.clear()
        self._task = asyncio.get_running_loop().create_task(
            self.run_forever(after=after), name="callhome-check-in"
        )
        return self._task

    async def stop(self) -> None:
        """End the loop, cancelling the wait under way, and wait until the task has ended."""
        self._stop_requested.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
