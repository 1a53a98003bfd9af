"""A callhome test server that signs its answers like the real one, and misbehaves on request."""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import json
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REQUIRED_FIELDS = {"licence_key", "product", "version", "computer_id", "user_count"}
CONTRACT_FIELDS = REQUIRED_FIELDS | {"channel", "signatures", "nonce"}


class Misbehaviour(enum.Enum):
    NONE = "none"
    WRONG_KEY = "signed with a key that is not pinned"
    FORGED_KEYID = "signed with another key under the pinned key's keyid"
    TAMPERED_BODY = "body changed after signing"
    UNSIGNED = "no signature header"
    REPLAY = "the previous answer again, with its old nonce"
    WRONG_NONCE = "a correctly signed answer naming another nonce"
    WRONG_DIGEST = "a correctly signed answer naming another request digest"
    STALE = "server_time two days in the past: further off than any working clock"
    EXPIRED = "a signed answer whose expires_at has passed"
    BACKDATED = "a signed answer issued before the one trusted last"
    UNDATED = "a signed answer without issued_at"
    NOT_JSON = "a signed HTML page"
    MISSING_FIELD = "a signed answer without lease_expires"
    HUGE = "a signed answer of 300 KiB"
    ERROR_500 = "500"
    UNAVAILABLE_503 = "503 with Retry-After"
    RATE_LIMITED_429 = "429 with Retry-After"
    REJECT_422 = "422 problem"
    SLOW = "a good answer, too late"
    BAD_GZIP = "a body that claims gzip and is not"


def public_key_base64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id_of(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_header(private_key: Ed25519PrivateKey, body: bytes, keyid: str | None = None) -> str:
    signature = base64.b64encode(private_key.sign(body)).decode("ascii")
    return f"keyid={keyid or key_id_of(private_key)}, ed25519={signature}"


def _rfc3339(moment: datetime, *, fraction: bool = False) -> str:
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ"
    return moment.astimezone(timezone.utc).strftime(pattern)


Response = tuple[int, dict[str, str], bytes]


class HostileServer:
    """An ASGI app for POST /v1/ping, the deactivation and the news. Set `misbehaviour`, or
    queue some with `script()`."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.signing_key = Ed25519PrivateKey.generate()
        self.other_key = Ed25519PrivateKey.generate()
        self.base_url = ""  # set by whoever serves the app
        self.reset(clock)

    def reset(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.misbehaviour = Misbehaviour.NONE
        self._script: deque[Misbehaviour] = deque()
        self.requests: list[bytes] = []
        self.licence_status = "valid"
        self.next_check_in_s = 6 * 3600
        self.lease = timedelta(days=7)
        self.retry_after_s = 120
        self.slow_s = 1.0
        # How far the server's clock is ahead of the machine's (the shared test clock).
        self.clock_offset_s = 0.0
        # News: a body and headers to send instead of the real answer (a replay), and edits.
        self.news_replay: Response | None = None
        self.news_edit: Callable[[dict[str, Any]], None] = lambda document: None
        self.news_requests: list[dict[str, str]] = []
        self._last_answer: Response | None = None
        self._last_deactivation: Response | None = None

    @property
    def public_key(self) -> str:
        return public_key_base64(self.signing_key)

    def script(self, *misbehaviours: Misbehaviour) -> None:
        """Answer the next requests with these, one each, then with `misbehaviour`."""
        self._script.extend(misbehaviours)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more_body = True
        while more_body:
            message = await receive()
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
        status, headers, payload = await self._respond(scope, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _respond(self, scope: dict[str, Any], body: bytes) -> Response:
        if scope["method"] == "GET" and scope["path"].startswith(("/v1/updates/", "/v1/feeds/")):
            return self._news(scope)
        if scope["method"] == "POST" and scope["path"] == "/v1/machines/deactivate":
            return self._deactivation(body)
        if scope["method"] != "POST" or scope["path"] != "/v1/ping":
            return 404, {}, b""
        self.requests.append(body)
        request = json.loads(body)
        if not REQUIRED_FIELDS <= request.keys() <= CONTRACT_FIELDS:
            return self._problem(422, "unknown or missing fields")
        misbehaviour = self._script.popleft() if self._script else self.misbehaviour
        if misbehaviour is Misbehaviour.SLOW:
            await asyncio.sleep(self.slow_s)
        return self._misbehave(misbehaviour, request, body)

    def _misbehave(
        self, misbehaviour: Misbehaviour, request: dict[str, Any], body: bytes
    ) -> Response:
        refusals = {
            Misbehaviour.ERROR_500: (500, {"Content-Type": "text/plain"}, b"Internal Server Error"),
            Misbehaviour.UNAVAILABLE_503: self._problem(503, "store unavailable", retry=True),
            Misbehaviour.RATE_LIMITED_429: self._problem(429, "rate limited", retry=True),
            Misbehaviour.REJECT_422: self._problem(422, "user_count is out of range"),
            Misbehaviour.BAD_GZIP: (200, {"Content-Encoding": "gzip"}, b"not gzip at all"),
        }
        if misbehaviour in refusals:
            return refusals[misbehaviour]
        if misbehaviour is Misbehaviour.REPLAY and self._last_answer is not None:
            return self._last_answer
        document = self.answer_document(request, body)
        if misbehaviour is Misbehaviour.WRONG_NONCE:
            document["nonce"] = "another-nonce-0123456789"
        if misbehaviour is Misbehaviour.WRONG_DIGEST:
            document["request_sha256"] = hashlib.sha256(b"another request").hexdigest()
        if misbehaviour is Misbehaviour.STALE:
            document["server_time"] = _rfc3339(self.clock() - timedelta(days=2))
        if misbehaviour is Misbehaviour.EXPIRED:
            document["issued_at"] = _rfc3339(self.clock() - timedelta(hours=2))
            document["expires_at"] = document["lease_expires"] = _rfc3339(self.clock())
        if misbehaviour is Misbehaviour.BACKDATED:
            document["issued_at"] = _rfc3339(self.clock() - timedelta(hours=1))
        if misbehaviour is Misbehaviour.UNDATED:
            del document["issued_at"]
        if misbehaviour is Misbehaviour.MISSING_FIELD:
            del document["lease_expires"]
        if misbehaviour is Misbehaviour.HUGE:
            document["padding"] = "x" * 300 * 1024
        payload = json.dumps(document, separators=(",", ":")).encode()
        if misbehaviour is Misbehaviour.NOT_JSON:
            payload = b"<html><body>Please log in to the hotel Wi-Fi</body></html>"
        return self._signed(misbehaviour, payload)

    def _signed(self, misbehaviour: Misbehaviour, payload: bytes) -> Response:
        headers = {"Content-Type": "application/json"}
        if misbehaviour is Misbehaviour.WRONG_KEY:
            headers["Callhome-Signature"] = signature_header(self.other_key, payload)
        elif misbehaviour is Misbehaviour.FORGED_KEYID:
            headers["Callhome-Signature"] = signature_header(
                self.other_key, payload, keyid=key_id_of(self.signing_key)
            )
        elif misbehaviour is not Misbehaviour.UNSIGNED:
            headers["Callhome-Signature"] = signature_header(self.signing_key, payload)
        if misbehaviour is Misbehaviour.TAMPERED_BODY:
            payload = payload.replace(b'"max_users":50', b'"max_users":5000')
        answer = (200, headers, payload)
        if misbehaviour is Misbehaviour.NONE:
            self._last_answer = answer
        return answer

    def _deactivation(self, body: bytes) -> Response:
        """POST /v1/machines/deactivate: the seat is freed; REPLAY sends the previous answer."""
        misbehaviour = self._script.popleft() if self._script else self.misbehaviour
        if misbehaviour is Misbehaviour.REPLAY and self._last_deactivation is not None:
            return self._last_deactivation
        now = self.clock() + timedelta(seconds=self.clock_offset_s)
        document = {
            "status": "deactivated",
            "this_machine": "3f9a0c1b2d4e",
            "issued_at": _rfc3339(now),
            "expires_at": _rfc3339(now + timedelta(minutes=5)),
            "nonce": json.loads(body).get("nonce"),
            "request_sha256": hashlib.sha256(body).hexdigest(),
        }
        payload = json.dumps(document, separators=(",", ":")).encode()
        headers = {"Callhome-Signature": signature_header(self.signing_key, payload)}
        self._last_deactivation = (200, headers, payload)
        return self._last_deactivation

    def _news(self, scope: dict[str, Any]) -> Response:
        """GET /v1/updates/{product} and /v1/feeds/{feed}, signed, per-hour epochs, ETag/304."""
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        self.news_requests.append(headers)
        if self.news_replay is not None:
            return self.news_replay
        query = dict(parse_qsl(scope["query_string"].decode()))
        return self.news_answer(scope["path"], query, headers.get("if-none-match"))

    def news_answer(
        self, path: str, query: dict[str, str], if_none_match: str | None = None
    ) -> Response:
        """The answer the real server would give now, as sent."""
        now = self.clock() + timedelta(seconds=self.clock_offset_s)
        issued_at = now.replace(minute=0, second=0, microsecond=0)
        document: dict[str, Any] = {
            "issued_at": _rfc3339(issued_at),
            "expires_at": _rfc3339(issued_at + timedelta(days=1)),
        }
        name = path.rsplit("/", 1)[1]
        if path.startswith("/v1/updates/"):
            document |= {
                "product": name,
                "channel": query.get("channel", "stable"),
                "version": query["version"],
                "update": {"version": "2.0.0", "url": "https://downloads.example/2.0.0",
                           "sha256": "ab" * 32, "size": 123456, "notes_url": None,
                           "critical": False},
            }  # fmt: skip
        else:
            installed = int(query["version"])
            chain = [
                {"from": version, "to": version + 1, "url": f"https://dl.example/{version}",
                 "sha256": "cd" * 32, "size": 10}
                for version in range(installed, installed + 3)
            ]  # fmt: skip
            document |= {
                "feed": name,
                "version": installed,
                "product_version": query.get("product_version"),
                "signature_set": {"version": installed + 3, "url": "https://dl.example/full",
                                  "sha256": "ef" * 32, "size": 1000, "delta": None,
                                  "chain": chain},
            }  # fmt: skip
        self.news_edit(document)
        payload = json.dumps(document, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
        if if_none_match == etag:
            return 304, {"ETag": etag}, b""
        return (
            200,
            {
                "Content-Type": "application/json",
                "ETag": etag,
                "Callhome-Signature": signature_header(self.signing_key, payload),
            },
            payload,
        )

    def answer_document(self, request: dict[str, Any], body: bytes) -> dict[str, Any]:
        """The answer the real server would give, plus a field this client does not know."""
        now = self.clock() + timedelta(seconds=self.clock_offset_s)
        return {
            "issued_at": _rfc3339(now),
            "expires_at": _rfc3339(now + self.lease),
            "licence": {
                "status": self.licence_status,
                "expires_at": "2027-01-31T00:00:00Z",
                "max_users": 50,
                "users_over_limit": request["user_count"] > 50,
                "machines": {"allowed": 3, "active": 1, "over_limit": False, "seat": "granted"},
            },
            "update": {
                "version": "2.0.0",
                "url": "https://downloads.example/mailserver-2.0.0.tar.gz",
                "sha256": "ab" * 32,
                "size": 123456,
                "notes_url": None,
                "critical": False,
            },
            "signatures": {
                feed: {
                    "version": version + 1,
                    "url": f"https://downloads.example/{feed}-{version + 1}",
                    "sha256": "cd" * 32,
                    "size": 4096,
                    "delta": {
                        "from": version,
                        "url": f"https://downloads.example/{feed}-{version}-{version + 1}",
                        "sha256": "ef" * 32,
                        "size": 512,
                    },
                }
                for feed, version in request.get("signatures", {}).items()
            },
            "next_check_in": self.next_check_in_s,
            "lease_expires": _rfc3339(now + self.lease),
            "server_time": _rfc3339(now, fraction=True),
            "nonce": request.get("nonce"),
            "request_sha256": hashlib.sha256(body).hexdigest(),
            "served_by": "hostile-test-server",
        }

    def _problem(self, status: int, title: str, *, retry: bool = False) -> Response:
        headers = {"Content-Type": "application/problem+json"}
        if retry:
            headers["Retry-After"] = str(self.retry_after_s)
        problem = {"type": "about:blank", "title": title, "status": status}
        return status, headers, json.dumps(problem).encode()
