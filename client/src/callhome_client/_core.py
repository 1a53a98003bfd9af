"""The check-in logic both clients share: everything but the I/O."""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Union

import httpx

from ._answer import SignedAnswer, decode_object, verify_answer
from ._cache import AnswerCache
from ._computer_id import hardware_computer_id
from ._constants import DEACTIVATE_PATH, MAX_RETRY_AFTER_S, PING_PATH, SIGNATURE_HEADER
from ._exceptions import (
    NoTrustedVerdict,
    RequestRejected,
    ServerUnavailable,
    StaleAnswerError,
    UntrustedAnswer,
)
from ._models import Deactivation, Verdict, parse_deactivation, parse_verdict
from ._request import (
    Identity,
    PreparedPing,
    check_computer_id,
    check_licence_key,
    check_product,
    check_version,
    prepare_deactivation,
    prepare_ping,
)
from ._signing import PinnedKeys
from ._time import Clock

logger = logging.getLogger("callhome_client")

ComputerIdSource = Union[str, Callable[[], str], None]
"""The product's own computer ID, a callable returning it, or None for the hardware ID."""

# 408 and 429 say "later", not "wrong": like 5xx they leave the cached verdict in force.
_TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})


class CheckInCore:
    """Builds each ping, judges each answer, and keeps the last good verdict and its lease."""

    def __init__(
        self,
        *,
        base_url: str,
        licence_key: str,
        product: str,
        version: str,
        public_keys: Iterable[str],
        computer_id: ComputerIdSource,
        cache_path: str | os.PathLike[str] | None,
        max_age_s: float,
        clock: Clock,
    ) -> None:
        check_licence_key(licence_key)
        check_product(product)
        check_version(version)
        if isinstance(computer_id, str):
            check_computer_id(computer_id)
        self.url = base_url.rstrip("/") + PING_PATH
        self.deactivate_url = base_url.rstrip("/") + DEACTIVATE_PATH
        self._licence_key = licence_key
        self._product = product
        self._version = version
        self._keys = PinnedKeys(public_keys)
        self._computer_id_source = computer_id
        self._identity: Identity | None = None
        self._cache = AnswerCache(cache_path)
        self._cache_loaded = False
        self._last_good: Verdict | None = None
        self._not_before_at: datetime | None = None
        self._max_age = timedelta(seconds=max_age_s)
        self._clock = clock

    def identity(self) -> Identity:
        """The fixed fields of every ping; the computer ID is worked out on first use."""
        if self._identity is None:
            computer_id = self._resolve_computer_id()
            check_computer_id(computer_id)
            self._identity = Identity(self._licence_key, self._product, self._version, computer_id)
        return self._identity

    def _resolve_computer_id(self) -> str:
        source = self._computer_id_source
        if source is None:
            return hardware_computer_id(self._product)
        return source if isinstance(source, str) else source()

    @property
    def not_before_at(self) -> datetime | None:
        """The server asked (Retry-After) not to be called before this time."""
        return self._not_before_at

    def seconds_until_callable(self) -> float:
        """How long Retry-After still forbids calling the server (0 when it does not)."""
        if self._not_before_at is None:
            return 0.0
        return max(0.0, (self._not_before_at - self._clock()).total_seconds())

    def prepare(
        self, *, user_count: int, signatures: Mapping[str, int] | None, channel: str | None
    ) -> PreparedPing | Verdict:
        """The ping to send, or the cached verdict while the server must not be called."""
        ping = prepare_ping(
            self.identity(), user_count=user_count, signatures=signatures, channel=channel
        )
        wait_s = self.seconds_until_callable()
        if wait_s > 0:
            return self.fall_back(
                ServerUnavailable(f"the server asked to wait {wait_s:.0f} s more", wait_s)
            )
        return ping

    def accept(
        self, ping: PreparedPing, status_code: int, headers: httpx.Headers, body: bytes
    ) -> Verdict:
        """Turn the server's answer into a verdict, a fallback to the cache, or an error."""
        if status_code == 200:
            return self._trust(SignedAnswer(ping.body, body, headers.get(SIGNATURE_HEADER)))
        if 400 <= status_code < 500 and status_code not in _TRANSIENT_CLIENT_ERRORS:
            raise RequestRejected(status_code, _problem_summary(body))
        retry_after_s = parse_retry_after(headers.get("Retry-After"), self._clock())
        if retry_after_s is not None:
            self._not_before_at = self._clock() + timedelta(seconds=retry_after_s)
        return self.fall_back(
            ServerUnavailable(f"the server answered {status_code}", retry_after_s)
        )

    def prepare_deactivation(self) -> PreparedPing:
        return prepare_deactivation(self.identity())

    def accept_deactivation(
        self, request: PreparedPing, status_code: int, headers: httpx.Headers, body: bytes
    ) -> Deactivation:
        """The verified answer to a deactivation; the cached verdict is dropped with the seat."""
        if status_code != 200:
            if 400 <= status_code < 500 and status_code not in _TRANSIENT_CLIENT_ERRORS:
                raise RequestRejected(status_code, _problem_summary(body))
            retry_after_s = parse_retry_after(headers.get("Retry-After"), self._clock())
            raise ServerUnavailable(f"the server answered {status_code}", retry_after_s)
        answer = SignedAnswer(request.body, body, headers.get(SIGNATURE_HEADER))
        deactivation = parse_deactivation(verify_answer(self._keys, answer))
        if self._clock() >= deactivation.expires_at:
            raise StaleAnswerError("the deactivation answer has expired")
        if deactivation.seat_free:
            self._last_good = None
            self._cache_loaded = True
            self._cache.forget()
        return deactivation

    def holds_floating_seat(self) -> bool:
        """The last good verdict is a floating seat this machine holds: free it on close."""
        verdict = self._last_good
        return verdict is not None and verdict.seats.floating and verdict.seats.granted

    def fall_back(self, failure: ServerUnavailable) -> Verdict:
        """The cached verdict while its lease runs; otherwise NoTrustedVerdict."""
        verdict = self.cached_verdict()
        if verdict is None:
            raise NoTrustedVerdict(
                f"{failure}, and no cached verdict is leased", failure.retry_after_s
            ) from failure
        return verdict

    def cached_verdict(self) -> Verdict | None:
        """The last good verdict (cached=True) while its lease runs, else None."""
        if not self._cache_loaded:
            self._cache_loaded = True
            self._last_good = self._load_cache()
        verdict = self._last_good
        if verdict is None or self._clock() >= verdict.lease_expires_at:
            return None
        return verdict

    def _trust(self, answer: SignedAnswer) -> Verdict:
        verdict = parse_verdict(verify_answer(self._keys, answer), cached=False)
        if self._clock() - verdict.server_time_at > self._max_age:
            raise StaleAnswerError(
                f"the answer's server_time is older than {self._max_age.total_seconds():g} s"
            )
        self._last_good = dataclasses.replace(verdict, cached=True)
        self._cache_loaded = True  # the file now holds this answer; no need to read it back
        self._not_before_at = None
        self._cache.save(answer)
        return verdict

    def _load_cache(self) -> Verdict | None:
        """The verdict in the cache file if it still verifies with the pinned keys.

        Nonce and server_time are not checked here: the answer is old by design, the
        lease decides how long it is good for.
        """
        answer = self._cache.load()
        if answer is None:
            return None
        try:
            document = verify_answer(self._keys, answer)
            self._check_asked_by_us(answer.request_body)
            return parse_verdict(document, cached=True)
        except UntrustedAnswer as error:
            logger.warning("callhome: ignoring the verdict cache file: %s", error)
            return None

    def _check_asked_by_us(self, request_body: bytes) -> None:
        request = decode_object(request_body)
        identity = self.identity()
        asked_for = (request.get("licence_key"), request.get("product"), request.get("computer_id"))
        if asked_for != (identity.licence_key, identity.product, identity.computer_id):
            raise UntrustedAnswer("it answers another licence, product or computer")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # Python 3.9 raises TypeError on garbage
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = (moment - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _problem_summary(body: bytes) -> str:
    """The title and detail of a problem+json body, or a plain note when there is none."""
    try:
        problem = decode_object(body)
    except UntrustedAnswer:
        return "no problem details"
    parts = [problem.get("title"), problem.get("detail")]
    summary = ": ".join(part for part in parts if isinstance(part, str))
    return summary[:300] or "no problem details"
