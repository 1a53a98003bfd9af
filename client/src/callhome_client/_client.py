"""The sync and async clients: the network I/O around the shared check-in logic."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Generic, TypeVar, Union

import httpx

from ._constants import DEFAULT_MAX_AGE_S, DEFAULT_TIMEOUT, MAX_ANSWER_BYTES, __version__
from ._core import CheckInCore, ComputerIdSource
from ._exceptions import CallhomeError, ServerUnavailable
from ._models import Deactivation, Verdict
from ._request import prepare_ping
from ._time import Clock, utc_now

HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)
Timeout = Union[float, httpx.Timeout]

logger = logging.getLogger("callhome_client")

_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": f"callhome-client/{__version__}",
}


class _ClientBase(ABC, Generic[HttpClientT]):
    """What both clients share: configuration, the cached verdict and the ping preview."""

    def __init__(
        self,
        base_url: str,
        licence_key: str,
        product: str,
        version: str,
        public_keys: Iterable[str],
        *,
        computer_id: ComputerIdSource = None,
        cache_path: str | os.PathLike[str] | None = None,
        http_client: HttpClientT | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Clock = utc_now,
        release_floating_seat: bool = True,
    ) -> None:
        self._core = CheckInCore(
            base_url=base_url,
            licence_key=licence_key,
            product=product,
            version=version,
            public_keys=public_keys,
            computer_id=computer_id,
            cache_path=cache_path,
            max_age_s=max_age_s,
            clock=clock,
        )
        # On a floating licence a clean shutdown frees the seat at once for another machine.
        self._release_floating_seat = release_floating_seat
        # the timeout is passed with each request, so it also holds on an injected client
        self._timeout = timeout
        self._owns_http_client = http_client is None
        self._http: HttpClientT = self._new_http_client() if http_client is None else http_client

    @abstractmethod
    def _new_http_client(self) -> HttpClientT:
        """An HTTP client of the right kind, owned (and closed) by this client."""

    def ping_body(
        self,
        *,
        user_count: int,
        signatures: Mapping[str, int] | None = None,
        channel: str | None = None,
    ) -> bytes:
        """The exact JSON body check_in() would send now (with a fresh nonce); sends nothing."""
        return prepare_ping(
            self._core.identity(), user_count=user_count, signatures=signatures, channel=channel
        ).body

    def cached_verdict(self) -> Verdict | None:
        """The last good verdict (cached=True) while its lease runs, else None."""
        return self._core.cached_verdict()

    @property
    def not_before_at(self) -> datetime | None:
        """The time before which the server asked (Retry-After) not to be called."""
        return self._core.not_before_at

    def seconds_until_callable(self) -> float:
        """How long Retry-After still forbids calling the server (0 when it does not)."""
        return self._core.seconds_until_callable()


def _append_capped(body: bytearray, chunk: bytes) -> bool:
    """Append a chunk; False when the cap is reached and reading should stop.

    A signed answer cut at the cap no longer verifies, so it is refused like a forgery.
    """
    body += chunk[: MAX_ANSWER_BYTES + 1 - len(body)]
    return len(body) <= MAX_ANSWER_BYTES


def _log_unreleased(error: CallhomeError) -> None:
    logger.warning("callhome: could not free the floating seat on close: %s", error)


def _network_failure(error: httpx.TransportError) -> ServerUnavailable:
    return ServerUnavailable(f"network failure ({type(error).__name__})")


class Client(_ClientBase[httpx.Client]):
    """Checks in with the callhome server (blocking I/O).

    Pass computer_id (a string or a callable) when the product has its own ID, and
    cache_path to keep the last good verdict across restarts for offline grace.
    """

    def _new_http_client(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout)

    def check_in(
        self,
        *,
        user_count: int,
        signatures: Mapping[str, int] | None = None,
        channel: str | None = None,
    ) -> Verdict:
        """Ping the server and return its verified verdict, or the cached one when it is down.

        Raises UntrustedAnswer (and subclasses) for a refused answer, RequestRejected for
        a 4xx, NoTrustedVerdict when the server is unavailable and no lease is running.
        """
        step = self._core.prepare(user_count=user_count, signatures=signatures, channel=channel)
        if isinstance(step, Verdict):
            return step
        try:
            status_code, headers, body = self._post(self._core.url, step.body)
        except httpx.TransportError as error:
            return self._core.fall_back(_network_failure(error))
        return self._core.accept(step, status_code, headers, body)

    def deactivate(self) -> Deactivation:
        """Free this machine's seat at once (hardware swap, uninstall); a second call is harmless.

        Raises ServerUnavailable when the server cannot be reached, RequestRejected for a
        4xx, UntrustedAnswer for an answer that does not verify.
        """
        request = self._core.prepare_deactivation()
        try:
            status_code, headers, body = self._post(self._core.deactivate_url, request.body)
        except httpx.TransportError as error:
            raise _network_failure(error) from error
        return self._core.accept_deactivation(request, status_code, headers, body)

    def _post(self, url: str, content: bytes) -> tuple[int, httpx.Headers, bytes]:
        body = bytearray()
        with self._http.stream(
            "POST", url, content=content, headers=_HEADERS, timeout=self._timeout
        ) as response:
            for chunk in response.iter_bytes():
                if not _append_capped(body, chunk):
                    break
        return response.status_code, response.headers, bytes(body)

    def close(self) -> None:
        """Free a floating seat this machine holds (when asked to), then close the HTTP client,
        unless it was passed in (its owner closes it)."""
        if self._release_floating_seat and self._core.holds_floating_seat():
            try:
                self.deactivate()
            except CallhomeError as error:
                _log_unreleased(error)
        if self._owns_http_client:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_ClientBase[httpx.AsyncClient]):
    """The asyncio twin of Client: the same arguments, the same verdicts."""

    def _new_http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout)

    async def check_in(
        self,
        *,
        user_count: int,
        signatures: Mapping[str, int] | None = None,
        channel: str | None = None,
    ) -> Verdict:
        """Ping the server; see Client.check_in()."""
        step = self._core.prepare(user_count=user_count, signatures=signatures, channel=channel)
        if isinstance(step, Verdict):
            return step
        try:
            status_code, headers, body = await self._post(self._core.url, step.body)
        except httpx.TransportError as error:
            return self._core.fall_back(_network_failure(error))
        return self._core.accept(step, status_code, headers, body)

    async def deactivate(self) -> Deactivation:
        """Free this machine's seat at once; see Client.deactivate()."""
        request = self._core.prepare_deactivation()
        try:
            status_code, headers, body = await self._post(self._core.deactivate_url, request.body)
        except httpx.TransportError as error:
            raise _network_failure(error) from error
        return self._core.accept_deactivation(request, status_code, headers, body)

    async def _post(self, url: str, content: bytes) -> tuple[int, httpx.Headers, bytes]:
        body = bytearray()
        async with self._http.stream(
            "POST", url, content=content, headers=_HEADERS, timeout=self._timeout
        ) as response:
            async for chunk in response.aiter_bytes():
                if not _append_capped(body, chunk):
                    break
        return response.status_code, response.headers, bytes(body)

    async def aclose(self) -> None:
        """Free a floating seat this machine holds (when asked to), then close the HTTP client,
        unless it was passed in (its owner closes it)."""
        if self._release_floating_seat and self._core.holds_floating_seat():
            try:
                await self.deactivate()
            except CallhomeError as error:
                _log_unreleased(error)
        if self._owns_http_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
