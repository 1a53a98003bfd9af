"""Helpers to send pings and check their signed answers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI

from app.core import auth
from tests import app_parts
from tests.conftest import bearer, issue_token


def computer_id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def ping_body(key: str, *, machine: str = "pc-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "licence_key": key,
        "product": "mail",
        "version": "8.2.1",
        "computer_id": computer_id(machine),
        "user_count": 10,
        "nonce": secrets.token_urlsafe(24),
    }
    body.update(overrides)
    return body


def verify_signature(app: FastAPI, response: httpx.Response) -> dict[str, Any]:
    """Check the answer's signature with the served public key; return the body."""
    header = response.headers["Callhome-Signature"]
    fields = dict(part.strip().split("=", 1) for part in header.split(","))
    signer = app_parts.signer(app)
    assert fields["keyid"] == signer.key_id
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(signer.public_key_b64))
    public_key.verify(base64.b64decode(fields["ed25519"]), response.content)
    answer: dict[str, Any] = json.loads(response.content)
    return answer


async def send_ping(
    http: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    content = json.dumps(body).encode()
    response = await http.post("/v1/ping", content=content, **kwargs)
    assert response.status_code == 200, response.text
    answer = verify_signature(app, response)
    assert answer["request_sha256"] == hashlib.sha256(content).hexdigest()
    assert answer["nonce"] == body.get("nonce")
    return answer


async def new_licence(http: httpx.AsyncClient, app: FastAPI, **fields: Any) -> dict[str, Any]:
    headers = bearer(await issue_token(app, auth.Scope.LICENCES_WRITE, name="maker"))
    response = await http.post(
        "/v1/admin/licences", json={"product": "mail", **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
