"""The SDK's customer side against the real server: this machine, add-ons, grace, deactivation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from callhome_client import Client, NoTrustedVerdict
from callhome_client._cli import main as client_cli

from app.core import auth
from app.core.clock import rfc3339
from app.main import create_app
from client.tests.server_thread import serve_in_thread
from tests.support.clocks import FrozenClock
from tests.support.stores import Store
from tests.support.tokens import staff_token


class Live:
    def __init__(self, base_url: str, token: str, public_key: str, clock: FrozenClock):
        self.base_url = base_url
        self.admin = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        self.public_key = public_key
        self.clock = clock

    def licence(self, **fields: Any) -> dict[str, Any]:
        response = self.admin.post("/v1/admin/licences", json={"product": "mail", **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def client(self, key: str, computer: str, **options: Any) -> Client:
        options.setdefault("clock", self.clock.now)
        return Client(
            options.pop("base_url", self.base_url), key, "mail", "8.2.1", [self.public_key],
            computer_id=computer, **options,
        )  # fmt: skip


@pytest.fixture
def live(store: Store, clock: FrozenClock) -> Iterator[Live]:
    token = staff_token(store, *auth.Scope, name="e2e")
    app = create_app(store.settings, clock=clock)
    with serve_in_thread(app, lifespan="on") as base_url:
        public_key = httpx.get(f"{base_url}/v1/keys").json()["keys"][0]["public_key"]
        server = Live(base_url, token, public_key, clock)
        yield server
        server.admin.close()


def test_this_machine_and_add_ons_as_the_product_sees_them(live: Live) -> None:
    licence = live.licence(entitlements=["spam"], updates_until="2099-06-30")
    with live.client(licence["key"], "a" * 64) as client:
        verdict = client.check_in(user_count=3)
    assert verdict.entitled("spam")
    assert not verdict.entitled("antivirus")
    assert verdict.updates_until == dt.date(2099, 6, 30)
    staff_view = live.admin.get(f"/v1/admin/licences/{licence['id']}").json()
    assert verdict.seats.this_machine == staff_view["machines"][0]["machine_id"][:12]
    assert verdict.to_dict()["entitlements"] == ["spam"]


def test_deactivate_frees_the_seat_for_the_next_machine(live: Live, tmp_path: Path) -> None:
    licence = live.licence(max_machines=1, overage="deny")
    cache = tmp_path / "verdict.json"
    with live.client(licence["key"], "a" * 64, cache_path=cache) as old:
        assert old.check_in(user_count=1).licensed
        assert cache.exists()
        with live.client(licence["key"], "b" * 64) as new:
            assert not new.check_in(user_count=1).licensed
            freed = old.deactivate()
            assert freed.status == "deactivated" and freed.seat_free
            # The kept verdict vouched for the seat given up: it is gone from memory and
            # from the file, which keeps only its record against replayed answers.
            assert old.cached_verdict() is None
            assert json.loads(cache.read_bytes())["answer_body"] is None
            with live.client(licence["key"], "a" * 64, cache_path=cache) as restarted:
                assert restarted.cached_verdict() is None
            assert new.check_in(user_count=1).licensed
        assert old.deactivate().status == "not_seated"


def test_the_command_line_deactivates(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    licence = live.licence(max_machines=1)
    identity = [
        "--server", live.base_url, "--licence", licence["key"], "--product", "mail",
        "--public-key", live.public_key, "--computer-id-file", str(tmp_path / "id"),
    ]  # fmt: skip
    cache = tmp_path / "verdict.json"
    assert client_cli(["check-in", *identity, "--version", "8.2.1", "--cache", str(cache)]) == 0
    assert json.loads(cache.read_bytes())["answer_body"] is not None
    capsys.readouterr()
    assert client_cli(["deactivate", *identity, "--cache", str(cache)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["status"] == "deactivated"
    # The seat's verdict leaves the file; the file stays, with its record against replays.
    assert json.loads(cache.read_bytes())["answer_body"] is None
    detail = live.admin.get(f"/v1/admin/licences/{licence['id']}").json()
    assert answer["this_machine"] == detail["machines"][0]["machine_id"][:12]
    assert detail["machines"][0]["active"] is False


def test_a_clean_shutdown_frees_a_floating_seat_at_once(live: Live) -> None:
    licence = live.licence(max_machines=1, overage="deny", floating=True, lease_minutes=30)
    with live.client(licence["key"], "a" * 64, release_floating_seat=False) as kept:
        assert kept.check_in(user_count=1).seats.floating
    with live.client(licence["key"], "b" * 64) as other:
        assert not other.check_in(user_count=1).licensed  # the seat was kept
    live.clock.advance(minutes=31)  # its lease lapsed
    with live.client(licence["key"], "b" * 64) as first:
        assert first.check_in(user_count=1).licensed
    with live.client(licence["key"], "c" * 64) as second:
        assert second.check_in(user_count=1).licensed  # freed by the shutdown, not by time


def test_grace_is_honoured_online_and_offline_and_ends_at_grace_until(
    live: Live, tmp_path: Path
) -> None:
    expires_at = (live.clock.now() + dt.timedelta(days=1)).replace(microsecond=0)
    licence = live.licence(expires_at=rfc3339(expires_at), grace_days=3, entitlements=["spam"])
    grace_until = expires_at + dt.timedelta(days=3)
    cache = tmp_path / "verdict.json"
    with live.client(licence["key"], "a" * 64, cache_path=cache) as client:
        assert client.check_in(user_count=1).licensed
        live.clock.current = expires_at + dt.timedelta(days=1)
        graced = client.check_in(user_count=1)
    assert graced.licence_status == "expired"
    assert not graced.licensed
    assert graced.in_grace and graced.may_run
    assert graced.may_run_until == grace_until
    assert graced.entitled("spam")

    # The server is gone: the cached verdict carries the product to the end of grace.
    offline = live.client(licence["key"], "a" * 64, cache_path=cache, base_url="http://127.0.0.1:9")
    with offline:
        live.clock.current = grace_until - dt.timedelta(seconds=1)
        cached = offline.check_in(user_count=1)
        assert cached.cached and cached.may_run
        live.clock.current = grace_until
        with pytest.raises(NoTrustedVerdict):
            offline.check_in(user_count=1)

    with live.client(licence["key"], "a" * 64) as online:
        over = online.check_in(user_count=1)
    assert not over.may_run
    assert over.grace_until is None
