"""The sync and async clients: the network I/O around the shared check-in logic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar, Union

import httpx

from ._constants import DEFAULT_MAX_AGE_S, DEFAULT_TIMEOUT, MAX_ANSWER_BYTES, __version__
from ._core import CheckInCore, ComputerIdSource
from ._download import Downloadable, async_download, download
from ._exceptions import CallhomeError, ServerUnavailable, UnknownKeyError
from ._keylist import KEYS_PATH
from ._models import Deactivation, Verdict
from ._news import FeedNews, NewsRequest, UpdateNews, feed_news, update_news
from ._request import prepare_ping
from ._time import Clock, Monotonic, utc_now

HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)
T = TypeVar("T")

logger = logging.getLogger("callhome_client")
Timeout = Union[float, httpx.Timeout]

_ACCEPT = {"Accept": "application/json"}
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
        root_keys: Iterable[str] = (),
        computer_id: ComputerIdSource = None,
        cache_path: str | os.PathLike[str] | None = None,
        http_client: HttpClientT | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Clock = utc_now,
        monotonic: Monotonic = time.monotonic,
        release_floating_seat: bool = True,
    ) -> None:
        self._core = CheckInCore(
            base_url=base_url,
            licence_key=licence_key,
            product=product,
            version=version,
            public_keys=public_keys,
            root_keys=root_keys,
            computer_id=computer_id,
            cache_path=cache_path,
            max_age_s=max_age_s,
            clock=clock,
            monotonic=monotonic,
        )
        # AsyncClient's steps in its worker thread and its plain calls take turns on the
        # core with it; made here, so that no two callers can each make one of their own.
        self._core_turn = threading.Lock()
        # On a floating licence a clean shutdown frees the seat at once for another machine.
        self._release_floating_seat = release_floating_seat
        # the timeout is passed with each request, so it also holds on an injected client
        self._timeout = timeout
        self._owns_http_client = http_client is None
        self._http: HttpClientT = self._new_http_client() if http_client is None else http_client

    @abstractmethod
    def _new_http_client(self) -> HttpClientT:
        """An HTTP client of the right kind, owned (and closed) by this client."""

    def _core_in_turn(self) -> contextlib.AbstractContextManager[object]:
        """Held around a plain call that uses the client's state (cache, computer ID, clock
        record); AsyncClient's steps in its worker thread hold the same."""
        return contextlib.nullcontext()

    def ping_body(
        self,
        *,
        user_count: int,
        signatures: Mapping[str, int] | None = None,
        channel: str | None = None,
    ) -> bytes:
        """The exact JSON body check_in() would send now (with a fresh nonce); sends nothing."""
        identity = self._core.known_identity()
        if identity is None:
            with self._core_in_turn():
                identity = self._core.identity()
        return prepare_ping(
            identity, user_count=user_count, signatures=signatures, channel=channel
        ).body

    def cached_verdict(self) -> Verdict | None:
        """The last good verdict (cached=True) while its lease runs, else None."""
        with self._core_in_turn():
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


@contextlib.contextmanager
def _kept_key_list_on_failure() -> Iterator[None]:
    """A due refresh of the key list that fails leaves the kept list in force (logged):
    the answer's own check still needs a key that list vouches for."""
    try:
        yield
    except CallhomeError as error:
        logger.warning("callhome: could not refresh the key list: %s", error)


def _log_unreleased(error: CallhomeError) -> None:
    logger.warning("callhome: could not free the floating seat on close: %s", error)


# The answer never arrived whole: the connection failed, or its encoding was broken on
# the way. Either way a cached verdict stands in, as for a server that is down.
_ANSWER_NOT_RECEIVED = (httpx.TransportError, httpx.DecodingError)


def _network_failure(error: httpx.RequestError) -> ServerUnavailable:
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
            response, body = self._send("POST", self._core.url, content=step.body, headers=_HEADERS)
        except _ANSWER_NOT_RECEIVED as error:
            return self._core.fall_back(_network_failure(error))
        return self._following_keys(
            lambda: self._core.accept(step, response.status_code, response.headers, body)
        )

    def deactivate(self) -> Deactivation:
        """Free this machine's seat at once (hardware swap, uninstall); a second call is harmless.

        Raises ServerUnavailable when the server cannot be reached, RequestRejected for a
        4xx, UntrustedAnswer for an answer that does not verify.
        """
        request = self._core.prepare_deactivation()
        try:
            response, body = self._send(
                "POST", self._core.deactivate_url, content=request.body, headers=_HEADERS
            )
        except _ANSWER_NOT_RECEIVED as error:
            raise _network_failure(error) from error
        return self._following_keys(
            lambda: self._core.accept_deactivation(
                request, response.status_code, response.headers, body
            )
        )

    def check_updates(self, *, channel: str = "stable") -> UpdateNews:
        """Ask GET /v1/updates for the release to take; the answer is verified and fresh.

        Raises UntrustedAnswer for a refused answer (expired, older than one trusted,
        answering another question), RequestRejected for 401/403, ServerUnavailable.
        """
        return update_news(self._news(self._core.updates_request(channel)))

    def check_feed(
        self, name: str, installed: int, *, product_version: str | None = None
    ) -> FeedNews:
        """Ask GET /v1/feeds for the signature set after `installed`, with its plan."""
        return feed_news(self._news(self._core.feed_request(name, installed, product_version)))

    def download(self, item: Downloadable, destination: str | os.PathLike[str]) -> Path:
        """Fetch an update or a plan step to `destination`; see download()."""
        return download(self._http, item, destination, timeout=self._timeout)

    def _news(self, request: NewsRequest) -> dict[str, Any]:
        try:
            response, body = self._send(
                "GET",
                self._core.base_url + request.path,
                params=request.params,
                headers=self._core.news_headers(request),
            )
        except _ANSWER_NOT_RECEIVED as error:
            raise _network_failure(error) from error
        return self._following_keys(
            lambda: self._core.judge_news(request, response.status_code, response.headers, body)
        )

    def _following_keys(self, judge: Callable[[], T]) -> T:
        """Judge an answer with the key list current (when a root is pinned): fetched when
        due, and once more when the answer is signed by a key it does not know."""
        refreshed = self._core.key_list_due()
        if refreshed:
            with _kept_key_list_on_failure():
                self._learn_keys()
        try:
            return judge()
        except UnknownKeyError:
            if refreshed or not self._core.follows_key_list:
                raise
        self._learn_keys()
        return judge()

    def _learn_keys(self) -> None:
        try:
            response, body = self._send("GET", self._core.base_url + KEYS_PATH, headers=_ACCEPT)
        except _ANSWER_NOT_RECEIVED as error:
            raise _network_failure(error) from error
        self._core.learn_keys(response.status_code, body)

    def _send(self, method: str, url: str, **arguments: Any) -> tuple[httpx.Response, bytes]:
        """The response and its body, read up to the answer cap."""
        body = bytearray()
        with self._http.stream(method, url, timeout=self._timeout, **arguments) as response:
            for chunk in response.iter_bytes():
                if not _append_capped(body, chunk):
                    break
        return response, bytes(body)

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
    """The asyncio twin of Client: the same arguments, the same verdicts.

    Its steps that may wait on the disk (the cache file's lock and fsync, the computer ID
    worked out on first use) run in a worker thread, so the product's event loop keeps
    turning meanwhile; one such step at a time per client. The `computer_id` and `clock`
    callables may therefore be called from that thread. The plain calls cached_verdict()
    and ping_body() (before the computer ID is known) wait for a step under way, holding
    up the thread that calls them, the loop if called there, until that step ends.
    """

    def _new_http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout)

    def _core_in_turn(self) -> threading.Lock:
        """Held by whichever step uses the client's state, in the worker thread or in a
        plain call on the loop: one at a time."""
        return self._core_turn

    async def _off_loop(self, step: Callable[[], T]) -> T:
        turn = self._core_in_turn()

        def in_turn() -> T:
            # Taken in the worker thread, not on the loop: a cancelled check-in cannot stop
            # its thread, and the next step must still wait until that thread is done.
            with turn:
                return step()

        return await asyncio.to_thread(in_turn)

    async def check_in(
        self,
        *,
        user_count: int,
        signatures: Mapping[str, int] | None = None,
        channel: str | None = None,
    ) -> Verdict:
        """Ping the server; see Client.check_in()."""
        step = await self._off_loop(
            lambda: self._core.prepare(
                user_count=user_count, signatures=signatures, channel=channel
            )
        )
        if isinstance(step, Verdict):
            return step
        try:
            response, body = await self._send(
                "POST", self._core.url, content=step.body, headers=_HEADERS
            )
        except _ANSWER_NOT_RECEIVED as error:
            failure = _network_failure(error)
            return await self._off_loop(lambda: self._core.fall_back(failure))
        return await self._following_keys(
            lambda: self._core.accept(step, response.status_code, response.headers, body)
        )

    async def deactivate(self) -> Deactivation:
        """Free this machine's seat at once; see Client.deactivate()."""
        request = await self._off_loop(self._core.prepare_deactivation)
        try:
            response, body = await self._send(
                "POST", self._core.deactivate_url, content=request.body, headers=_HEADERS
            )
        except _ANSWER_NOT_RECEIVED as error:
            raise _network_failure(error) from error
        return await self._following_keys(
            lambda: self._core.accept_deactivation(
                request, response.status_code, response.headers, body
            )
        )

    async def check_updates(self, *, channel: str = "stable") -> UpdateNews:
        """Ask GET /v1/updates; see Client.check_updates()."""
        return update_news(await self._news(self._core.updates_request(channel)))

    async def check_feed(
        self, name: str, installed: int, *, product_version: str | None = None
    ) -> FeedNews:
        """Ask GET /v1/feeds; see Client.check_feed()."""
        request = self._core.feed_request(name, installed, product_version)
        return feed_news(await self._news(request))

    async def download(self, item: Downloadable, destination: str | os.PathLike[str]) -> Path:
        """Fetch an update or a plan step to `destination`; see download()."""
        return await async_download(self._http, item, destination, timeout=self._timeout)

    async def _news(self, request: NewsRequest) -> dict[str, Any]:
        try:
            response, body = await self._send(
                "GET",
                self._core.base_url + request.path,
                params=request.params,
                headers=self._core.news_headers(request),
            )
        except _ANSWER_NOT_RECEIVED as error:
            raise _network_failure(error) from error
        return await self._following_keys(
            lambda: self._core.judge_news(request, response.status_code, response.headers, body)
        )

    async def _following_keys(self, judge: Callable[[], T]) -> T:
        """See Client._following_keys()."""
        refreshed = self._core.key_list_due()
        if refreshed:
            with _kept_key_list_on_failure():
                await self._learn_keys()
        try:
            return await self._off_loop(judge)
        except UnknownKeyError:
            if refreshed or not self._core.follows_key_list:
                raise
        await self._learn_keys()
        return await self._off_loop(judge)

    async def _learn_keys(self) -> None:
        try:
            response, body = await self._send(
                "GET", self._core.base_url + KEYS_PATH, headers=_ACCEPT
            )
        except _ANSWER_NOT_RECEIVED as error:
            raise _network_failure(error) from error
        await self._off_loop(lambda: self._core.learn_keys(response.status_code, body))

    async def _send(self, method: str, url: str, **arguments: Any) -> tuple[httpx.Response, bytes]:
        """The response and its body, read up to the answer cap."""
        body = bytearray()
        async with self._http.stream(method, url, timeout=self._timeout, **arguments) as response:
            async for chunk in response.aiter_bytes():
                if not _append_capped(body, chunk):
                    break
        return response, bytes(body)

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
