"""Offline activation for tests: a machine's request as the SDK writes it, its licence file
issued through the staff API, and the SDK's check of that file on a chosen computer ID."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from callhome_client import OfflineLicence, offline_request, read_offline_licence
from fastapi import FastAPI

from app.core import auth
from tests.support import app_parts
from tests.support.pings import computer_id
from tests.support.tokens import staff_headers

OFFLINE_ACTIVATIONS = "/v1/admin/offline-activations"


def activation_request(key: str, machine: str = "dmz-1", *, product: str = "mail") -> bytes:
    """The request file `callhome-client offline-request` writes on the machine `machine`."""
    return offline_request(key, product, "8.2.1", computer_id=computer_id(machine))


async def issue_file(
    http: httpx.AsyncClient, app: FastAPI, request: bytes, **query: Any
) -> httpx.Response:
    headers = await staff_headers(app, auth.Scope.LICENCES_WRITE, name="issuer")
    return await http.post(OFFLINE_ACTIVATIONS, content=request, params=query, headers=headers)


def public_key(app: FastAPI) -> str:
    return app_parts.signer(app).public_key_b64


def read_file(app: FastAPI, data: bytes, machine: str = "dmz-1", **options: Any) -> OfflineLicence:
    """The SDK's verdict on the file, on the machine `machine`, with the app's key pinned."""
    return read_offline_licence(
        data,
        product="mail",
        public_keys=[public_key(app)],
        computer_id=computer_id(machine),
        **options,
    )


def signed_document(data: bytes) -> dict[str, Any]:
    """The document a licence file carries (unverified: for looking inside)."""
    document: dict[str, Any] = json.loads(base64.b64decode(json.loads(data)["document"]))
    return document
