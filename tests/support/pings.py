"""Helpers to send pings, from chosen addresses, and check their signed answers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI

from tests.support import app_parts


def computer_id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def this_machine(app: FastAPI, licence_id: str, machine: str) -> str:
    """The short reference a verdict names the machine `machine` by (as staff see it)."""
    pseudonyms = app_parts.pseudonyms(app)
    return pseudonyms.machine_id(uuid.UUID(licence_id), computer_id(machine))[:12]


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


JSON_HEADERS = {"Content-Type": "application/json"}


async def send_ping(
    http: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    content = json.dumps(body).encode()
    headers = {**JSON_HEADERS, **kwargs.pop("headers", {})}
    response = await http.post("/v1/ping", content=content, headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    answer = verify_signature(app, response)
    assert answer["request_sha256"] == hashlib.sha256(content).hexdigest()
    assert answer["nonce"] == body.get("nonce")
    return answer


async def ping(
    app: FastAPI, key: str, machine: str, *, address: str = "203.0.113.7", **fields: Any
) -> dict[str, Any]:
    """One ping through the app, from `address` (its /24 is the network)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        return await send_ping(http, app, ping_body(key, machine=machine, **fields))
