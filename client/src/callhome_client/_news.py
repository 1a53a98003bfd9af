"""Update and feed news (GET /v1/updates, /v1/feeds): the requests, and the judging of answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from ._constants import SIGNATURE_HEADER
from ._exceptions import AnswerMismatchError, RequestRejected, ServerUnavailable
from ._freshness import window_of
from ._models import SignatureSet, Update, _Fields, _parse_signature_set, _parse_update
from ._request import check_channel, check_signatures

_ACCEPT = "application/json"


@dataclass(frozen=True)
class UpdateNews:
    """The signed answer of GET /v1/updates: the release to take, if any."""

    update: Update | None
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class FeedNews:
    """The signed answer of GET /v1/feeds: the signature set to fetch, if any, with its plan."""

    signature_set: SignatureSet | None
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class NewsRequest:
    """One news question: where to ask, what the signed answer must echo, its freshness kind."""

    path: str
    params: dict[str, str]
    echo: dict[str, Any]
    kind: str
    headers: dict[str, str] = field(repr=False, default_factory=dict)


def updates_request(licence_key: str, product: str, version: str, channel: str) -> NewsRequest:
    check_channel(channel)
    return NewsRequest(
        path=f"/v1/updates/{product}",
        params={"version": version, "channel": channel},
        echo={"product": product, "channel": channel, "version": version},
        kind=f"updates:{product}:{channel}",
        headers=_headers(licence_key),
    )


def feed_request(
    licence_key: str, feed: str, installed: int, product_version: str | None
) -> NewsRequest:
    check_signatures({feed: installed})
    params = {"version": str(installed)}
    if product_version is not None:
        params["product_version"] = product_version
    return NewsRequest(
        path=f"/v1/feeds/{quote(feed)}",
        params=params,
        echo={"feed": feed, "version": installed, "product_version": product_version},
        kind=f"feed:{feed}",
        headers=_headers(licence_key),
    )


def _headers(licence_key: str) -> dict[str, str]:
    return {"Authorization": f"Licence {licence_key}", "Accept": _ACCEPT}


class NewsCache:
    """The last signed answer per question, so a 304 answers from what was verified before."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, bytes, str]] = {}

    @staticmethod
    def _key(request: NewsRequest) -> tuple[str, tuple[tuple[str, str], ...]]:
        return request.path, tuple(sorted(request.params.items()))

    def conditional_headers(self, request: NewsRequest) -> dict[str, str]:
        known = self._answers.get(self._key(request))
        return request.headers if known is None else {**request.headers, "If-None-Match": known[0]}

    def resolve(
        self, request: NewsRequest, status_code: int, headers: httpx.Headers, body: bytes
    ) -> tuple[bytes, str | None]:
        """The body and signature to judge: this answer's, or on 304 the one kept."""
        if status_code == 304:
            known = self._answers.get(self._key(request))
            if known is None:
                raise ServerUnavailable("the server answered 304 to a question never asked")
            return known[1], known[2]
        if status_code != 200:
            if 400 <= status_code < 500 and status_code not in (408, 429):
                raise RequestRejected(status_code, "the news request was refused")
            raise ServerUnavailable(f"the server answered {status_code}")
        return body, headers.get(SIGNATURE_HEADER)

    def keep(self, request: NewsRequest, etag: str | None, body: bytes, signature: str) -> None:
        if etag:
            self._answers[self._key(request)] = (etag, body, signature)


def check_echo(request: NewsRequest, document: dict[str, Any]) -> None:
    """A news answer has no nonce: it must name the very question it answers."""
    for name, expected in request.echo.items():
        if document.get(name) != expected:
            raise AnswerMismatchError(f"the news answer names another {name}")


def update_news(document: dict[str, Any]) -> UpdateNews:
    window = window_of(document)
    update = _Fields(document, "").optional_child("update")
    return UpdateNews(
        None if update is None else _parse_update(update), window.issued_at, window.expires_at
    )


def feed_news(document: dict[str, Any]) -> FeedNews:
    window = window_of(document)
    offer = _Fields(document, "").optional_child("signature_set")
    return FeedNews(
        None if offer is None else _parse_signature_set(offer),
        window.issued_at,
        window.expires_at,
    )
