"""The conformance vectors (client/conformance/vectors.json): every decision this SDK reaches."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from callhome_client import (
    AnswerMismatchError,
    ClockBehindError,
    ClockSkewError,
    ExpiredAnswerError,
    MalformedAnswerError,
    RollbackError,
    SignatureError,
    UnknownKeyError,
    UntrustedAnswer,
    Verdict,
    WrongMachineError,
    read_offline_licence,
)
from callhome_client._core import CheckInCore
from callhome_client._news import NewsRequest
from callhome_client._request import PreparedPing
from callhome_client._time import format_rfc3339, parse_rfc3339

VECTORS = json.loads(
    (Path(__file__).parents[1] / "conformance" / "vectors.json").read_text(encoding="utf-8")
)["vectors"]

# The protocol's error codes (docs/protocol.md) and this SDK's exception for each.
ERRORS: dict[str, type[UntrustedAnswer]] = {
    "signature": SignatureError,
    "unknown-key": UnknownKeyError,
    "mismatch": AnswerMismatchError,
    "clock-skew": ClockSkewError,
    "expired": ExpiredAnswerError,
    "rollback": RollbackError,
    "malformed": MalformedAnswerError,
    "clock-behind": ClockBehindError,
    "wrong-machine": WrongMachineError,
}

NEWS_IDENTITY = {"licence_key": "CONFORMANCE-KEY-0001", "product": "mail", "version": "8.2.1"}


def code_of(error: UntrustedAnswer) -> str:
    # the most specific code: UnknownKeyError is a SignatureError, ClockSkewError a StaleAnswerError
    matching = [code for code, kind in ERRORS.items() if isinstance(error, kind)]
    return max(matching, key=lambda code: len(ERRORS[code].__mro__))


def write_kept_state(vector: dict[str, Any], cache_path: Path) -> None:
    """The file an SDK in the vector's state keeps: what it has trusted so far, and the
    verdict it kept for an `offline` vector."""
    cached = vector["answer"] if vector["kind"] == "offline" else None
    trust = {"newest_issued_at": vector["trusted"], "skew_s": 0.0,
             "clock_reached_at": vector.get("clock_reached_at")}  # fmt: skip
    cache_path.write_text(
        json.dumps(
            {
                "format": "callhome-verdict-cache/2",
                "request_body": _b64(vector["request"]["body"]) if cached else None,
                "answer_body": _b64(cached["body"]) if cached else None,
                "signature": cached["signature"] if cached else None,
                "trust": trust,
            }
        )
    )


def core_for(vector: dict[str, Any], cache_path: Path) -> CheckInCore:
    """An SDK started with the vector's pins and clock, on the state kept in cache_path."""
    request = (
        json.loads(vector["request"]["body"]) if "body" in vector["request"] else NEWS_IDENTITY
    )
    now = parse_rfc3339(vector["now"])
    return CheckInCore(
        base_url="http://conformance.invalid",
        licence_key=request["licence_key"],
        product=request["product"],
        # a deactivation names no version; any valid one will do
        version=request.get("version", NEWS_IDENTITY["version"]),
        public_keys=vector["pinned_public_keys"],
        root_keys=vector["pinned_root_keys"],
        computer_id=request.get("computer_id", "c0ffee" * 10 + "beef"),
        cache_path=cache_path,
        max_age_s=86400.0,
        clock=lambda: now,
        monotonic=lambda: 0.0,
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def read_licence_file(vector: dict[str, Any], cache_path: Path) -> dict[str, Any]:
    """What this SDK concludes from an offline licence file, keeping its record in the file."""
    now = parse_rfc3339(vector["now"])
    try:
        licence = read_offline_licence(
            vector["licence_file"].encode(),
            product=vector["request"]["product"],
            public_keys=vector["pinned_public_keys"],
            computer_id=vector["request"]["computer_id"],
            clock=lambda: now,
            cache_path=cache_path,
        )
    except UntrustedAnswer as error:
        return {"decision": "refuse", "error": code_of(error)}
    return {
        "decision": "trust",
        "licence_status": licence.verdict.licence_status,
        "may_run": licence.verdict.may_run,
        "issued_at": format_rfc3339(licence.issued_at),
        "expires_at": format_rfc3339(licence.expires_at),
        "this_machine": licence.this_machine,
    }


def verdict_decision(verdict: Verdict, expect: dict[str, Any]) -> dict[str, Any]:
    """A trusted verdict in the vector's terms (with the plan when the vector names one)."""
    decided: dict[str, Any] = {
        "decision": "trust",
        "licence_status": verdict.licence_status,
        "offline_until": format_rfc3339(verdict.lease_expires_at),
    }
    if "plan" in expect:
        decided["plan"] = {
            feed: [[step.from_version, step.to_version] for step in offer.plan]
            for feed, offer in verdict.signatures.items()
        }
    return decided


def decide_later(vector: dict[str, Any], step: dict[str, Any], cache_path: Path) -> dict[str, Any]:
    """A later check by the same SDK, restarted on what it recorded: the licence file read
    again, or the kept verdict judged offline."""
    if vector["kind"] == "offline-licence":
        return read_licence_file(vector | step, cache_path)
    core = core_for(vector | step, cache_path)
    try:
        verdict = core.offline_verdict()
    except UntrustedAnswer as error:
        return {"decision": "refuse", "error": code_of(error)}
    return verdict_decision(verdict, step["expect"])


def decide(vector: dict[str, Any], cache_path: Path) -> dict[str, Any]:
    """What this SDK concludes from the vector, in the vector's terms."""
    write_kept_state(vector, cache_path)
    if vector["kind"] == "offline-licence":
        return read_licence_file(vector, cache_path)
    core = core_for(vector, cache_path)
    try:
        if vector["key_document"] is not None:
            core.learn_keys(200, json.dumps(vector["key_document"]).encode())
        answer = vector["answer"]
        headers = httpx.Headers(
            {} if answer["signature"] is None else {"Callhome-Signature": answer["signature"]}
        )
        body = answer["body"].encode()
        if vector["kind"] == "news":
            request = NewsRequest(**vector["request"])
            document = core.judge_news(request, answer["status"], headers, body)
            return {
                "decision": "trust",
                "issued_at": document["issued_at"],
                "expires_at": document["expires_at"],
            }
        if vector["kind"] == "deactivation":
            sent = vector["request"]["body"].encode()
            asked = PreparedPing(sent, json.loads(sent)["nonce"])
            deactivation = core.accept_deactivation(asked, answer["status"], headers, body)
            return {
                "decision": "trust",
                "status": deactivation.status,
                "this_machine": deactivation.this_machine,
                "seat_free": deactivation.seat_free,
            }
        if vector["kind"] == "offline":
            verdict = core.offline_verdict()
        else:
            ping_body = vector["request"]["body"].encode()
            ping = PreparedPing(ping_body, json.loads(ping_body)["nonce"])
            verdict = core.accept(ping, answer["status"], headers, body)
    except UntrustedAnswer as error:
        return {"decision": "refuse", "error": code_of(error)}
    return verdict_decision(verdict, vector["expect"])


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_the_sdk_reaches_the_vectors_decision(vector: dict[str, Any], tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.json"
    assert decide(vector, cache_path) == vector["expect"], vector["about"]
    # later checks by the same SDK, on what it recorded from the ones before
    for step in vector.get("then", []):
        assert decide_later(vector, step, cache_path) == step["expect"], step["about"]


def test_every_error_code_is_exercised() -> None:
    refused = {vector["expect"].get("error") for vector in VECTORS} - {None}
    assert refused == set(ERRORS)
