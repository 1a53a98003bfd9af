"""The check-in logic both clients share: everything but the I/O."""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Union

import httpx

from ._answer import SignedAnswer, decode_object, verify_answer, verify_document
from ._cache import AnswerCache
from ._computer_id import hardware_computer_id
from ._constants import (
    DEACTIVATE_PATH,
    KEY_LIST_REFRESH_S,
    MAX_RETRY_AFTER_S,
    PING_PATH,
    SIGNATURE_HEADER,
)
from ._exceptions import (
    ClockBehindError,
    ClockSkewError,
    ExpiredAnswerError,
    NoCachedVerdict,
    NoTrustedVerdict,
    RequestRejected,
    RollbackError,
    ServerUnavailable,
    UntrustedAnswer,
)
from ._freshness import VERDICT, TrustRecord
from ._keylist import KEY_LIST_KIND, key_list_version, verify_key_list
from ._models import Deactivation, Verdict, parse_deactivation, parse_verdict
from ._news import NewsCache, NewsRequest, check_echo, feed_request, updates_request
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
from ._time import Clock, Monotonic, TrustedClock

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
        root_keys: Iterable[str],
        computer_id: ComputerIdSource,
        cache_path: str | os.PathLike[str] | None,
        max_age_s: float,
        clock: Clock,
        monotonic: Monotonic,
    ) -> None:
        check_licence_key(licence_key)
        check_product(product)
        check_version(version)
        if isinstance(computer_id, str):
            check_computer_id(computer_id)
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + PING_PATH
        self.deactivate_url = self.base_url + DEACTIVATE_PATH
        self._licence_key = licence_key
        self._product = product
        self._version = version
        self._keys = PinnedKeys(public_keys, root_keys)
        self._computer_id_source = computer_id
        self._identity: Identity | None = None
        self._cache = AnswerCache(cache_path)
        self._cache_loaded = False
        self._last_good: Verdict | None = None
        self._trust_record = TrustRecord()
        # the clock reached as the cache file holds it: written again once it moves on enough
        self._written_reached_at: datetime | None = None
        self._last_answer: SignedAnswer | None = None
        self._news = NewsCache()
        self._not_before_at: datetime | None = None
        self._clock = TrustedClock(clock, max_skew_s=max_age_s, monotonic=monotonic)
        self._monotonic = monotonic
        self._keys_learned_at: float | None = None

    def known_identity(self) -> Identity | None:
        """The identity once worked out: set once, never changed."""
        return self._identity

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

    def fall_back(self, failure: ServerUnavailable) -> Verdict:
        """The cached verdict while its lease runs; otherwise NoTrustedVerdict."""
        verdict = self.cached_verdict()
        if verdict is None:
            raise NoTrustedVerdict(
                f"{failure}, and no cached verdict is leased", failure.retry_after_s
            ) from failure
        logger.info("callhome: the check-in failed (%s); the cached verdict stands", failure)
        return verdict

    def cached_verdict(self) -> Verdict | None:
        """The last good verdict (cached=True) while its lease runs, else None."""
        try:
            return self.offline_verdict()
        except ClockBehindError as error:
            logger.warning("callhome: no offline verdict: %s", error)
            return None
        except UntrustedAnswer:
            return None

    def offline_verdict(self) -> Verdict:
        """The last good verdict while its lease runs; else raise NoCachedVerdict (none
        kept), ClockBehindError or ExpiredAnswerError (the lease is over).

        The clock seen is recorded, at once when it finds the lease over: judged as of the
        latest moment seen, a lapsed lease stays lapsed whatever the clock says later.
        """
        self._load_cache_once()
        verdict = self._last_good
        now = self._clock()
        record = self._trust_record
        if verdict is None:
            raise NoCachedVerdict("no verdict is kept")
        if record.clock_set_back(now):
            raise ClockBehindError("the clock is behind the latest time this machine has seen")
        record.reach(now)
        lapsed = record.judged_at(now) >= verdict.lease_expires_at
        ended_at = verdict.lease_expires_at if lapsed else None
        if record.clock_due(self._written_reached_at, passed=ended_at):
            self._save()
        if lapsed:
            raise ExpiredAnswerError("the kept verdict's lease is over")
        return verdict

    def _trust(self, answer: SignedAnswer) -> Verdict:
        document = verify_answer(self._keys, answer)
        verdict = parse_verdict(document, cached=False)
        skew_s = self._skew_of_fresh_answer(verdict.server_time_at)
        self._load_cache_once()
        window = self._trust_record.check(VERDICT, document, verdict.server_time_at)
        self._clock.observe(verdict.server_time_at)
        self._trust_record.remember(VERDICT, window)
        self._trust_record.answered(verdict.server_time_at, skew_s)
        self._last_good = dataclasses.replace(verdict, cached=True)
        self._not_before_at = None
        self._last_answer = answer
        self._save()
        return verdict

    def _save(self) -> None:
        """Merge the record and the kept answer into the cache file, and take in what other
        writers recorded there."""
        self._trust_record = self._cache.keep(self._last_answer, self._trust_record)
        self._written_reached_at = self._trust_record.clock_reached_at

    def _skew_of_fresh_answer(self, server_time_at: datetime) -> float:
        """The skew an answer bound to its request measures: its nonce proves it fresh, so
        its server time is the reference clock, unless it lies further off than any working
        clock would (ClockSkewError)."""
        skew_s = self._clock.skew_of(server_time_at)
        if abs(skew_s) > self._clock.max_skew_s:
            raise ClockSkewError(
                f"the server's time is {skew_s:+.0f} s from this machine's clock, "
                f"beyond the {self._clock.max_skew_s:g} s accepted: check the clock"
            )
        return skew_s

    def prepare_deactivation(self) -> PreparedPing:
        return prepare_deactivation(self.identity())

    def accept_deactivation(
        self, request: PreparedPing, status_code: int, headers: httpx.Headers, body: bytes
    ) -> Deactivation:
        """The verified answer to a deactivation; the kept verdict is dropped with the seat
        (the trust record stays: it guards against replays whatever the seat)."""
        if status_code != 200:
            if 400 <= status_code < 500 and status_code not in _TRANSIENT_CLIENT_ERRORS:
                raise RequestRejected(status_code, _problem_summary(body))
            retry_after_s = parse_retry_after(headers.get("Retry-After"), self._clock())
            raise ServerUnavailable(f"the server answered {status_code}", retry_after_s)
        answer = SignedAnswer(request.body, body, headers.get(SIGNATURE_HEADER))
        deactivation = parse_deactivation(verify_answer(self._keys, answer))
        # Judged by its own issued_at, as a verdict by its server_time: by this machine's
        # clock, a few minutes fast, the fresh answer would read as expired.
        skew_s = self._skew_of_fresh_answer(deactivation.issued_at)
        self._load_cache_once()
        self._clock.observe(deactivation.issued_at)
        self._trust_record.answered(deactivation.issued_at, skew_s)
        if deactivation.seat_free:
            self._last_good = None
            self._last_answer = None
        self._save()
        return deactivation

    def holds_floating_seat(self) -> bool:
        """The last good verdict is a floating seat this machine holds: free it on close."""
        verdict = self._last_good
        return verdict is not None and verdict.seats.floating and verdict.seats.granted

    def trust_document(self, kind: str, body: bytes, signature: str | None) -> dict[str, Any]:
        """A signed document other than the verdict (news), once its signature holds and it
        is neither expired nor older than one of its kind already trusted."""
        self._load_cache_once()
        document = verify_document(self._keys, body, signature)
        if self._trust_record.remember(
            kind, self._trust_record.check(kind, document, self._clock())
        ):
            self._save()
        return document

    @property
    def follows_key_list(self) -> bool:
        """A root key is pinned: an unknown signing key sends the client to GET /v1/keys."""
        return bool(self._keys.roots)

    def key_list_due(self) -> bool:
        """Whether to fetch the key list before judging: once per run, then every
        KEY_LIST_REFRESH_S, so a retired key stops being trusted within that time."""
        if not self.follows_key_list:
            return False
        learned_at = self._keys_learned_at
        return learned_at is None or self._monotonic() - learned_at >= KEY_LIST_REFRESH_S

    def learn_keys(self, status_code: int, body: bytes) -> None:
        """Take in the served key list once it verifies from a pinned root and is fresh."""
        if status_code != 200:
            raise ServerUnavailable(f"the server answered {status_code} for its key list")
        self._load_cache_once()
        document = decode_object(body)
        key_list = verify_key_list(document, self._keys.roots)
        window = self._trust_record.check(KEY_LIST_KIND, key_list.payload, self._clock())
        kept = self._trust_record.key_document
        if kept is not None and key_list.version < key_list_version(kept):
            raise RollbackError("the key list is older than the version already trusted")
        self._keys.adopt(key_list)
        self._keys_learned_at = self._monotonic()
        self._trust_record.remember(KEY_LIST_KIND, window)
        self._trust_record.key_document = document
        self._save()

    def updates_request(self, channel: str) -> NewsRequest:
        return updates_request(self._licence_key, self._product, self._version, channel)

    def feed_request(self, feed: str, installed: int, product_version: str | None) -> NewsRequest:
        return feed_request(self._licence_key, feed, installed, product_version)

    def news_headers(self, request: NewsRequest) -> dict[str, str]:
        """The request's headers, with If-None-Match when a verified answer is kept."""
        return self._news.conditional_headers(request)

    def judge_news(
        self, request: NewsRequest, status_code: int, headers: httpx.Headers, body: bytes
    ) -> dict[str, Any]:
        """The verified, fresh news document answering `request` (a 304: the one kept)."""
        body, signature = self._news.resolve(request, status_code, headers, body)
        document = self.trust_document(request.kind, body, signature)
        check_echo(request, document)
        if status_code == 200 and signature is not None:
            self._news.keep(request, headers.get("ETag"), body, signature)
        return document

    def _load_cache_once(self) -> None:
        if not self._cache_loaded:
            self._cache_loaded = True
            self._last_good = self._load_cache()

    def _load_cache(self) -> Verdict | None:
        """The verdict in the cache file if it still verifies with the pinned keys.

        Nonce and server_time are not checked here: the answer is old by design, the
        lease decides how long it is good for.
        """
        contents = self._cache.load()
        self._trust_record = contents.trust
        self._written_reached_at = contents.trust.clock_reached_at
        self._clock.assume_skew(contents.trust.skew_s)
        self._adopt_kept_key_list()
        answer = contents.answer
        if answer is None:
            return None
        try:
            document = verify_answer(self._keys, answer)
            self._check_asked_by_us(answer.request_body)
            verdict = parse_verdict(document, cached=True)
            self._trust_record.check(VERDICT, document, verdict.server_time_at)
            self._last_answer = answer
            return verdict
        except UntrustedAnswer as error:
            logger.warning("callhome: ignoring the verdict cache file: %s", error)
            return None

    def _adopt_kept_key_list(self) -> None:
        """Trust the keys of the key list kept in the cache file while it verifies and runs."""
        document = self._trust_record.key_document
        if document is None or not self.follows_key_list:
            return
        try:
            key_list = verify_key_list(document, self._keys.roots)
            self._trust_record.check(KEY_LIST_KIND, key_list.payload, self._clock())
        except UntrustedAnswer as error:
            logger.info("callhome: not using the kept key list: %s", error)
            return
        self._keys.adopt(key_list)

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
