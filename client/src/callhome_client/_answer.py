"""A signed answer as received, and the checks that bind it to the request it answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import AnswerMismatchError, MalformedAnswerError
from ._freshness import window_of
from ._request import request_digest
from ._signing import PinnedKeys


@dataclass(frozen=True)
class SignedAnswer:
    """The exact request and answer bytes and the signature header: enough to re-verify."""

    request_body: bytes = field(repr=False)
    answer_body: bytes = field(repr=False)
    signature: str | None


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object, refusing anything else as a malformed answer."""
    try:
        document = json.loads(body)
    except ValueError:
        raise MalformedAnswerError("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedAnswerError("the answer is not a JSON object")
    return document


def verify_document(keys: PinnedKeys, body: bytes, signature: str | None) -> dict[str, Any]:
    """A signed document, once a trusted key signed it while that key was in force."""
    keyid = keys.verify(signature, body)
    document = decode_object(body)
    keys.check_window(keyid, window_of(document).issued_at)
    return document


def verify_answer(keys: PinnedKeys, answer: SignedAnswer) -> dict[str, Any]:
    """The answer document, once its signature and its binding to the request both hold."""
    document = verify_document(keys, answer.answer_body, answer.signature)
    if document.get("request_sha256") != request_digest(answer.request_body):
        raise AnswerMismatchError("the answer names the digest of another request")
    if document.get("nonce") != decode_object(answer.request_body).get("nonce"):
        raise AnswerMismatchError("the answer carries another nonce")
    return document
