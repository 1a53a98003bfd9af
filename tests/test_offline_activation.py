"""Offline activation: request -> licence file -> verified on the machine with no network; the
seat is taken exactly once, and the file is refused anywhere it does not hold."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from callhome_client import SignatureError, StaleAnswerError, UnknownKeyError, WrongMachineError
from callhome_client._cli import main as client_main
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import select

from app.core import auth
from app.core.signing import Signer
from app.licences.models import Machine
from tests.support import app_parts
from tests.support.cli import invoke
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.offline import (
    OFFLINE_ACTIVATIONS,
    activation_request,
    issue_file,
    public_key,
    read_file,
    signed_document,
)
from tests.support.pings import computer_id, ping_body, send_ping, this_machine
from tests.support.stores import Store
from tests.support.tokens import staff_headers


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Inside, any attempt to open a connection fails the test."""

    def refuse(*_: Any) -> None:
        raise AssertionError("the offline check tried to use the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


async def _machines(app: FastAPI, licence_id: str) -> list[Machine]:
    async with app_parts.database(app).sessions() as session:
        rows = await session.scalars(
            select(Machine).where(Machine.licence_id == uuid.UUID(licence_id))
        )
        return list(rows)


async def test_a_licence_file_holds_on_its_machine_with_no_network(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    expires = (clock.now() + dt.timedelta(days=90)).replace(microsecond=0)
    licence = await create_licence(
        client, app, max_machines=2, expires_at=expires.isoformat(), entitlements=["spam"]
    )
    response = await issue_file(client, app, activation_request(licence["key"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="machine.lic"'

    with no_network():
        checked = read_file(app, response.content, clock=clock.now)

    assert checked.verdict.licensed and checked.verdict.entitled("spam")
    assert checked.verdict.seats.this_machine == this_machine(app, licence["id"], "dmz-1")
    assert checked.this_machine == checked.verdict.seats.this_machine
    assert checked.issued_at == clock.now()
    assert checked.expires_at == expires, "a licence's file runs to the licence's expiry"
    document = signed_document(response.content)
    assert {"issued_at", "expires_at"} <= set(document)
    assert computer_id("dmz-1") not in response.text
    assert computer_id("dmz-1") not in json.dumps(document)
    assert licence["key"] not in json.dumps(document)


async def test_a_file_is_refused_elsewhere_later_tampered_or_signed_by_another_key(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app)
    response = await issue_file(client, app, activation_request(licence["key"]), days=30)
    assert response.status_code == 200, response.text
    data = response.content
    assert read_file(app, data, clock=clock.now).expires_at == clock.now() + dt.timedelta(days=30)
    stack = contextlib.ExitStack()
    stack.enter_context(no_network())

    with pytest.raises(WrongMachineError):
        read_file(app, data, machine="another-pc", clock=clock.now)

    later = clock.now() + dt.timedelta(days=30)
    with pytest.raises(StaleAnswerError):
        read_file(app, data, clock=lambda: later)
    before_issue = clock.now() - dt.timedelta(days=1)
    with pytest.raises(StaleAnswerError):
        read_file(app, data, clock=lambda: before_issue)

    outer = json.loads(data)
    document = bytearray(base64.b64decode(outer["document"]))
    at = document.index(b'"status":"valid"') + len(b'"status":"')
    document[at : at + 5] = b"VALID"
    tampered = json.dumps(outer | {"document": base64.b64encode(bytes(document)).decode()})
    with pytest.raises(SignatureError):
        read_file(app, tampered.encode(), clock=clock.now)

    stranger = Signer(Ed25519PrivateKey.generate())
    original = base64.b64decode(outer["document"])
    forged = {"document": outer["document"], "signature": stranger.signature_header(original)}
    with pytest.raises(UnknownKeyError):
        read_file(app, json.dumps(forged).encode(), clock=clock.now)
    stack.close()


async def test_the_seat_is_taken_exactly_once_and_held_while_the_file_runs(
    store: Store, client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, overage="deny")
    request = activation_request(licence["key"])

    first, second = await asyncio.gather(
        issue_file(client, app, request), issue_file(client, app, request)
    )
    assert (first.status_code, second.status_code) == (200, 200)
    renewed = await issue_file(client, app, request, days=60)  # renewing is the same flow
    assert renewed.status_code == 200
    machines = await _machines(app, licence["id"])
    assert [(m.seat, m.retired_at) for m in machines] == [("granted", None)]

    refused = await issue_file(client, app, activation_request(licence["key"], "dmz-2"))
    assert refused.status_code == 409
    assert len(await _machines(app, licence["id"])) == 1, "a refusal leaves nothing behind"

    # The offline machine never pings, yet keeps its seat past the activity window.
    clock.advance(days=20)
    newcomer = await send_ping(client, app, ping_body(licence["key"], machine="pc-new"))
    assert newcomer["licence"]["machines"]["seat"] == "denied"
    assert newcomer["licence"]["machines"]["active"] == 1

    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    audit = (await client.get("/v1/admin/audit-log", headers=reader)).json()["items"]
    activations = [entry for entry in audit if entry["action"] == "machine.offline_activate"]
    assert len(activations) == 3
    assert {entry["actor"] for entry in activations} == {"issuer"}

    # Once the file has ended the seat is free for the next machine.
    clock.advance(days=41)
    admitted = await send_ping(client, app, ping_body(licence["key"], machine="pc-new"))
    assert admitted["licence"]["machines"]["seat"] == "granted"


async def test_a_trial_starts_at_the_offline_seat_and_the_file_ends_with_its_grace(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, trial_days=14, grace_days=7)
    response = await issue_file(client, app, activation_request(licence["key"]))
    assert response.status_code == 200, response.text
    trial_end = clock.now() + dt.timedelta(days=14)

    checked = read_file(app, response.content, clock=clock.now)
    assert checked.verdict.expires_at == trial_end
    assert checked.expires_at == trial_end + dt.timedelta(days=7), "into grace, never past it"

    in_grace = trial_end + dt.timedelta(days=1)
    verdict = read_file(app, response.content, clock=lambda: in_grace).verdict
    assert verdict.licence_status == "expired" and verdict.in_grace and verdict.may_run
    assert verdict.grace_until == checked.expires_at


async def test_the_staff_route_refuses_what_it_must(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app)
    request = activation_request(licence["key"])
    assert (await client.post(OFFLINE_ACTIVATIONS, content=request)).status_code == 401
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    forbidden = await client.post(OFFLINE_ACTIVATIONS, content=request, headers=reader)
    assert forbidden.status_code == 403

    unknown = await issue_file(client, app, activation_request("NOT-A-KNOWN-KEY-0000"))
    assert unknown.status_code == 404
    other_product = await issue_file(
        client, app, activation_request(licence["key"], product="other")
    )
    assert other_product.status_code == 404
    extra = json.loads(request) | {"email": "someone@example.com"}
    for body in (json.dumps(extra).encode(), b"{}", b"not json"):
        refused = await issue_file(client, app, body)
        assert refused.status_code == 422
        assert licence["key"] not in refused.text and "someone" not in refused.text
    assert (await issue_file(client, app, request, days=0)).status_code == 422
    assert (await issue_file(client, app, b" " * 5000)).status_code == 413

    floating = await create_licence(client, app, floating=True, lease_minutes=30)
    assert (await issue_file(client, app, activation_request(floating["key"]))).status_code == 409
    expired = await create_licence(
        client, app, expires_at=(clock.now() - dt.timedelta(days=1)).isoformat()
    )
    assert (await issue_file(client, app, activation_request(expired["key"]))).status_code == 409
    assert await _machines(app, licence["id"]) == []


async def test_the_command_lines_request_issue_and_verify(
    store: Store,
    client: httpx.AsyncClient,
    app: FastAPI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    licence = await create_licence(client, app, max_machines=1)
    id_file = tmp_path / "computer-id"
    arguments = ["--licence-key", licence["key"], "--product", "mail", "--version", "8.2.1"]
    assert client_main(["offline-request", *arguments, "--computer-id-file", str(id_file)]) == 0
    request = capsys.readouterr().out
    assert set(json.loads(request)) == {"licence_key", "product", "computer_id", "version"}
    (tmp_path / "request.json").write_text(request)

    issued = await invoke(store, "offline", "issue", str(tmp_path / "request.json"), "--days", "5")
    assert issued.exit_code == 0, issued.output
    (tmp_path / "machine.lic").write_bytes(issued.stdout_bytes)

    verify = ["offline-verify", "--licence-file", str(tmp_path / "machine.lic")]
    verify += ["--product", "mail", "--public-key", public_key(app)]
    assert client_main([*verify, "--computer-id-file", str(id_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"]["licence_status"] == "valid"
    assert client_main([*verify, "--computer-id-file", str(tmp_path / "other-id")]) == 3
    assert "another machine" in capsys.readouterr().err

    unknown = tmp_path / "unknown.json"
    unknown.write_bytes(activation_request("NOT-A-KNOWN-KEY-0000"))
    refused = await invoke(store, "offline", "issue", str(unknown))
    assert refused.exit_code == 1
    assert "No licence of this product has this key" in refused.output
