"""Offline licence files in the trust record: an older file replayed after a newer one, a
clock set back after a file ended, a record shared with a running client (merged, under the
file's lock, or around a lock held for good), a record that cannot be written, and the
product's own computer ID source failing."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import callhome_client._cache
from callhome_client import (
    ClockBehindError,
    ExpiredAnswerError,
    OfflineLicence,
    RollbackError,
    read_offline_licence,
)
from callhome_client._cli import main
from callhome_client._constants import RECORD_LOCK_WAIT_S
from client_support import COMPUTER_ID, PRODUCT, ClientFactory, FakeClock
from hostile_server import HostileServer, public_key_base64, signature_header

SIGNING_KEY = Ed25519PrivateKey.generate()
DAY = timedelta(days=1)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def licence_file(issued_at: datetime, days: int, key: Ed25519PrivateKey = SIGNING_KEY) -> bytes:
    """A licence file for this machine, as `callhome offline issue` writes it."""
    salt = hashlib.sha256(rfc3339(issued_at).encode()).digest()[:16]
    document = {
        "format": "callhome-offline-licence/1",
        "product": PRODUCT,
        "licence": {
            "status": "valid", "expires_at": None, "grace_until": None, "max_users": 50,
            "users_over_limit": False, "entitlements": [], "updates_until": None,
            "machines": {"allowed": 1, "active": 1, "over_limit": False, "seat": "granted",
                         "this_machine": "3f9a0c1b2d4e", "floating": False},
        },
        "machine": {
            "this_machine": "3f9a0c1b2d4e",
            "binding_salt": base64.b64encode(salt).decode(),
            "binding_sha256": hashlib.sha256(salt + COMPUTER_ID.encode()).hexdigest(),
        },
        "issued_at": rfc3339(issued_at),
        "expires_at": rfc3339(issued_at + days * DAY),
    }  # fmt: skip
    signed = json.dumps(document, separators=(",", ":")).encode()
    outer = {
        "document": base64.b64encode(signed).decode(),
        "signature": signature_header(key, signed),
    }
    return json.dumps(outer).encode()


def read(data: bytes, at: datetime, cache_path: Path | None, **options: Any) -> OfflineLicence:
    return read_offline_licence(
        data,
        product=PRODUCT,
        public_keys=[public_key_base64(SIGNING_KEY)],
        computer_id=options.pop("computer_id", COMPUTER_ID),
        clock=lambda: at,
        cache_path=cache_path,
        **options,
    )


def test_an_older_file_is_refused_once_a_newer_one_was_accepted_even_after_a_restart(
    clock: FakeClock, cache_path: Path
) -> None:
    older, newer = licence_file(clock.now, 60), licence_file(clock.now + 20 * DAY, 60)
    later = clock.now + 21 * DAY
    assert read(older, later, cache_path).expires_at == clock.now + 60 * DAY

    assert read(newer, later, cache_path).issued_at == clock.now + 20 * DAY
    with pytest.raises(RollbackError):
        read(older, later, cache_path)
    # the product reads its file at every start: the same file again is fine
    assert read(newer, later + DAY, cache_path).verdict.licensed
    # without the record the SDK cannot know: the record is what refuses the replay
    assert read(older, later, None).verdict.licensed


def test_a_clock_set_back_does_not_revive_a_file_seen_ended(
    clock: FakeClock, cache_path: Path
) -> None:
    data = licence_file(clock.now, 30)
    ended_at = clock.now + 30 * DAY
    with pytest.raises(ExpiredAnswerError, match="the licence file ended at"):
        read(data, ended_at, cache_path)

    with pytest.raises(ClockBehindError):
        read(data, ended_at - DAY, cache_path)
    # within the few minutes a clock correction may take back, still ended
    with pytest.raises(ExpiredAnswerError):
        read(data, ended_at - timedelta(minutes=2), cache_path)
    # a renewal issued before the old file ended holds
    renewal = licence_file(clock.now + 25 * DAY, 30)
    assert read(renewal, ended_at - timedelta(minutes=2), cache_path).verdict.licensed


def test_the_record_shares_the_clients_file_and_keeps_its_verdict(
    make_client: ClientFactory,
    server: HostileServer,
    clock: FakeClock,
    cache_path: Path,
    closed_url: str,
) -> None:
    make_client().check_in(user_count=1)
    read(licence_file(clock.now, 30), clock.now, cache_path)

    assert make_client(base_url=closed_url).check_in(user_count=1).cached
    recorded = json.loads(cache_path.read_bytes())["trust"]["newest_issued_at"]
    assert set(recorded) == {"verdict", f"offline-licence:{PRODUCT}"}


def test_a_record_that_cannot_be_written_does_not_refuse_a_good_file(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unwritable = tmp_path / "no-such-folder" / "record.json"

    assert read(licence_file(clock.now, 30), clock.now, unwritable).verdict.licensed
    assert "could not write" in caplog.text


def test_a_failing_computer_id_source_reaches_the_product_and_records_nothing(
    clock: FakeClock, cache_path: Path
) -> None:
    def broken_source() -> str:
        raise OSError("the product's ID store is unreadable")

    with pytest.raises(OSError, match="ID store"):
        read(licence_file(clock.now, 30), clock.now, cache_path, computer_id=broken_source)
    assert not cache_path.exists()


def test_the_command_line_checks_against_the_record(
    clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    id_file = tmp_path / "computer-id"
    id_file.write_text(COMPUTER_ID)
    record = tmp_path / "record.json"
    files = {
        "old.lic": licence_file(clock.now - 20 * DAY, 60),
        "new.lic": licence_file(clock.now, 60),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    def verify(name: str) -> int:
        return main([
            "offline-verify", "--licence-file", str(tmp_path / name), "--product", PRODUCT,
            "--public-key", public_key_base64(SIGNING_KEY), "--computer-id-file", str(id_file),
            "--cache", str(record),
        ])  # fmt: skip

    assert verify("new.lic") == 0
    capsys.readouterr()
    assert verify("old.lic") == 3
    assert "issued before one already trusted" in capsys.readouterr().err


def test_a_running_client_keeps_what_the_licence_check_recorded_in_its_file(
    make_client: ClientFactory, clock: FakeClock, cache_path: Path
) -> None:
    client = make_client()
    client.check_in(user_count=1)
    older, newer = licence_file(clock.now - 20 * DAY, 60), licence_file(clock.now, 60)
    read(newer, clock.now, cache_path)

    clock.advance(3600)
    client.check_in(user_count=1)  # the client, running all along, writes its record

    with pytest.raises(RollbackError):
        read(older, clock.now, cache_path)


def test_the_licence_check_never_brings_back_a_verdict_freed_meanwhile(
    make_client: ClientFactory, clock: FakeClock, cache_path: Path, closed_url: str
) -> None:
    client = make_client()
    client.check_in(user_count=1)

    def clock_while_an_uninstaller_frees_the_seat() -> datetime:
        # between the licence check's read of the record and its write
        assert client.deactivate().seat_free
        return clock.now

    read_offline_licence(
        licence_file(clock.now, 30),
        product=PRODUCT,
        public_keys=[public_key_base64(SIGNING_KEY)],
        computer_id=COMPUTER_ID,
        clock=clock_while_an_uninstaller_frees_the_seat,
        cache_path=cache_path,
    )

    assert make_client(base_url=closed_url).cached_verdict() is None


def test_two_clients_sharing_a_file_never_put_an_older_verdict_back(
    make_client: ClientFactory, clock: FakeClock, cache_path: Path, closed_url: str
) -> None:
    first, second = make_client(), make_client()
    first.check_in(user_count=1)
    clock.advance(3600)
    newer = second.check_in(user_count=1)
    clock.advance(3600)

    first.check_updates()  # the first, running all along, writes its record

    restarted = make_client(base_url=closed_url).cached_verdict()
    assert restarted is not None and restarted.lease_expires_at == newer.lease_expires_at


def _newest_recorded(cache_path: Path) -> dict[str, str]:
    recorded: dict[str, str] = json.loads(cache_path.read_bytes())["trust"]["newest_issued_at"]
    return recorded


def test_writers_sharing_the_record_take_turns_under_its_lock(
    clock: FakeClock, cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # long enough that even a busy machine does not give up on the lock within this test
    monkeypatch.setattr(callhome_client._cache, "RECORD_LOCK_WAIT_S", 30.0)
    kind = f"offline-licence:{PRODUCT}"
    read(licence_file(clock.now, 30), clock.now, cache_path)
    # another process takes the lock and reads the record, to write it back with its own news
    holder = os.open(cache_path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    held = json.loads(cache_path.read_bytes())
    renewal_at = clock.now + DAY
    reading = threading.Thread(
        target=read, args=(licence_file(renewal_at, 30), renewal_at, cache_path)
    )
    reading.start()
    time.sleep(0.3)
    assert _newest_recorded(cache_path)[kind] == rfc3339(clock.now), "it waits for the lock"

    held["trust"]["newest_issued_at"]["feed:spam"] = rfc3339(clock.now)
    replacement = cache_path.with_name("replacement")
    replacement.write_text(json.dumps(held))
    os.replace(replacement, cache_path)
    os.close(holder)
    reading.join()

    assert _newest_recorded(cache_path) == {
        kind: rfc3339(renewal_at),
        "feed:spam": rfc3339(clock.now),
    }


def test_a_lock_held_for_good_is_gone_around_without_hanging_the_product(
    clock: FakeClock, cache_path: Path
) -> None:
    older = licence_file(clock.now, 30)
    read(older, clock.now, cache_path)
    holder = os.open(cache_path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a process hung mid-write
    try:
        started = time.monotonic()
        renewal = read(licence_file(clock.now + DAY, 30), clock.now + DAY, cache_path)
        waited_s = time.monotonic() - started
    finally:
        os.close(holder)

    assert renewal.verdict.licensed
    assert RECORD_LOCK_WAIT_S <= waited_s < RECORD_LOCK_WAIT_S + 5
    with pytest.raises(RollbackError):  # merged and written all the same
        read(older, clock.now + DAY, cache_path)


def test_a_deactivation_answer_is_the_true_time_for_the_record_it_shares(
    make_client: ClientFactory, clock: FakeClock, cache_path: Path, closed_url: str
) -> None:
    make_client().check_in(user_count=1)
    clock.set_forward(30 * DAY.total_seconds())  # the clock runs a month ahead for a while
    assert make_client(base_url=closed_url).cached_verdict() is None
    clock.set_back(30 * DAY.total_seconds())
    clock.advance(60)
    data = licence_file(clock.now, 30)
    with pytest.raises(ClockBehindError):  # put right, it reads as a clock set back
        read(data, clock.now, cache_path)

    assert make_client().deactivate().seat_free  # the server answers, freeing the seat

    assert read(data, clock.now, cache_path).verdict.licensed
