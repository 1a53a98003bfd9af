"""The offline cache file: verified again on load, trusted by lease only, written atomically."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import stat
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callhome_client import AsyncClient, NoTrustedVerdict, Verdict
from callhome_client._constants import RECORD_LOCK_WAIT_S
from client_support import COMPUTER_ID, ClientFactory, FakeClock, client_arguments
from hostile_server import HostileServer, signature_header


def _edit_cache(cache_path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(cache_path.read_text())
    edit(document)
    cache_path.write_text(json.dumps(document))


def _decoded(document: dict[str, Any], field: str) -> bytes:
    return base64.b64decode(document[field])


def _encode(document: dict[str, Any], field: str, value: bytes) -> None:
    document[field] = base64.b64encode(value).decode()


def _longer_lease(document: dict[str, Any]) -> None:
    answer = json.loads(_decoded(document, "answer_body"))
    answer["lease_expires"] = "2099-01-01T00:00:00Z"
    _encode(document, "answer_body", json.dumps(answer, separators=(",", ":")).encode())


def _foreign_signature(server: HostileServer) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["signature"] = signature_header(
            server.other_key, _decoded(document, "answer_body")
        )

    return edit


def _other_request(document: dict[str, Any]) -> None:
    request = json.loads(_decoded(document, "request_body"))
    request["user_count"] += 1
    _encode(document, "request_body", json.dumps(request, separators=(",", ":")).encode())


@pytest.mark.parametrize(
    "tamper",
    ["longer lease", "foreign signature", "other request", "not json", "empty"],
)
def test_a_tampered_cache_file_is_ignored(
    make_client: ClientFactory,
    server: HostileServer,
    cache_path: Path,
    closed_url: str,
    tamper: str,
) -> None:
    make_client().check_in(user_count=1)
    if tamper == "longer lease":
        _edit_cache(cache_path, _longer_lease)
    elif tamper == "foreign signature":
        _edit_cache(cache_path, _foreign_signature(server))
    elif tamper == "other request":
        _edit_cache(cache_path, _other_request)
    else:
        cache_path.write_bytes(b"{not json" if tamper == "not json" else b"")

    with pytest.raises(NoTrustedVerdict):
        make_client(base_url=closed_url).check_in(user_count=1)


def test_a_cache_file_of_another_licence_is_ignored(
    make_client: ClientFactory, closed_url: str
) -> None:
    make_client().check_in(user_count=1)

    with pytest.raises(NoTrustedVerdict):
        make_client(base_url=closed_url, licence_key="ANOTHER-LICENCE-0001").check_in(user_count=1)


def test_a_cached_answer_is_judged_by_its_lease_not_by_its_age_or_nonce(
    make_client: ClientFactory, clock: FakeClock, closed_url: str
) -> None:
    good = make_client().check_in(user_count=1)
    clock.advance(2 * 86400)  # far beyond the 300 s allowed for a fresh answer

    verdict = make_client(base_url=closed_url).check_in(user_count=5)

    assert verdict.cached and verdict.lease_expires_at == good.lease_expires_at


def test_the_cache_file_is_private_and_leaves_no_temp_files(
    make_client: ClientFactory, cache_path: Path
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    client.check_in(user_count=2)

    assert stat.S_IMODE(cache_path.stat().st_mode) == 0o600
    assert [path.name for path in cache_path.parent.iterdir()] == [cache_path.name]


def test_an_interrupted_cache_write_leaves_the_previous_file_whole(
    make_client: ClientFactory,
    cache_path: Path,
    closed_url: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client()
    first = client.check_in(user_count=1)
    clock.advance(60)

    def power_cut(source: str, target: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", power_cut)
    second = client.check_in(user_count=2)
    monkeypatch.undo()

    assert second.cached is False, "a failed cache write must not cost the fresh verdict"
    assert [path.name for path in cache_path.parent.iterdir()] == [cache_path.name]
    restarted = make_client(base_url=closed_url)
    assert restarted.check_in(user_count=1).lease_expires_at == first.lease_expires_at


def test_an_unwritable_cache_folder_does_not_break_check_in(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(cache_path=tmp_path / "missing-folder" / "verdict.json")

    assert client.check_in(user_count=1).licensed


def test_an_async_check_in_waiting_for_the_cache_file_leaves_the_products_loop_turning(
    server: HostileServer, clock: FakeClock, cache_path: Path
) -> None:
    """Another process holds the cache file's lock (hung mid-write, say): the check-in
    waits for it up to RECORD_LOCK_WAIT_S, and the product's other tasks run meanwhile."""
    tick_s = 0.01

    async def check_in_while_ticking() -> tuple[Verdict, int]:
        async with AsyncClient(**client_arguments(server, clock), cache_path=cache_path) as client:
            await client.check_in(user_count=1)
            holder = os.open(cache_path, os.O_RDONLY)
            fcntl.flock(holder, fcntl.LOCK_EX)
            ticks = 0

            async def product_task() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(tick_s)
                    ticks += 1

            ticking = asyncio.create_task(product_task())
            try:
                verdict = await client.check_in(user_count=1)
            finally:
                ticking.cancel()
                os.close(holder)
            return verdict, ticks

    verdict, ticks = asyncio.run(check_in_while_ticking())

    assert verdict.licensed
    # Blocked, the loop would turn only around the HTTP exchange: a tick or two at most.
    assert ticks >= RECORD_LOCK_WAIT_S / tick_s / 10


def test_a_plain_call_while_an_async_check_in_works_in_its_thread_waits_for_it(
    server: HostileServer, clock: FakeClock
) -> None:
    """The product asks for ping_body() on its loop while a check-in is working out the
    computer ID in the worker thread: the plain call waits for that step rather than
    work on the client's state beside it, so the ID's commands run once."""
    entered, release = threading.Event(), threading.Event()
    calls = 0

    def slow_computer_id() -> str:
        nonlocal calls
        calls += 1
        entered.set()
        release.wait(5)
        return COMPUTER_ID

    async def body_during_check_in() -> tuple[dict[str, Any], Verdict]:
        arguments = {**client_arguments(server, clock), "computer_id": slow_computer_id}
        async with AsyncClient(**arguments) as client:
            checking_in = asyncio.create_task(client.check_in(user_count=1))
            assert await asyncio.to_thread(entered.wait, 5)
            threading.Timer(0.2, release.set).start()
            body = json.loads(client.ping_body(user_count=2))
            return body, await checking_in

    body, verdict = asyncio.run(body_during_check_in())

    assert verdict.licensed
    assert calls == 1
    assert (body["computer_id"], body["user_count"]) == (COMPUTER_ID, 2)


def test_ping_body_once_the_computer_id_is_known_does_not_wait_for_a_step(
    server: HostileServer, clock: FakeClock
) -> None:
    """With the computer ID known, ping_body() needs nothing a step might be changing: it
    answers while a check-in's step is held up in the worker thread."""
    armed, entered, release = threading.Event(), threading.Event(), threading.Event()
    step_went_on = False

    def product_clock() -> datetime:
        nonlocal step_went_on
        if armed.is_set() and threading.current_thread() is not threading.main_thread():
            entered.set()
            release.wait(5)  # were ping_body() waiting for this step, it would end here
            step_went_on = True
        return clock()

    async def body_during_step() -> tuple[dict[str, Any], bool, Verdict]:
        arguments = {**client_arguments(server, clock), "clock": product_clock}
        async with AsyncClient(**arguments) as client:
            await client.check_in(user_count=1)
            armed.set()
            checking_in = asyncio.create_task(client.check_in(user_count=1))
            assert await asyncio.to_thread(entered.wait, 5)
            body = json.loads(client.ping_body(user_count=3))
            answered_during_step = not step_went_on
            release.set()
            return body, answered_during_step, await checking_in

    body, answered_during_step, verdict = asyncio.run(body_during_step())

    assert answered_during_step
    assert body["user_count"] == 3
    assert verdict.licensed
