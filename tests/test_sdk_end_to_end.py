"""The SDK against the real server, over a real socket, on both stores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from callhome_client import AsyncClient, Client, NoTrustedVerdict

from app.core import auth
from app.main import create_app
from client.tests.server_thread import serve_in_thread
from tests.support.stores import Store
from tests.support.tokens import staff_token


class LiveServer:
    def __init__(self, base_url: str, token: str, public_key: str):
        self.base_url = base_url
        self.admin = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        self.public_key = public_key

    def licence(self, **fields: Any) -> dict[str, Any]:
        response = self.admin.post("/v1/admin/licences", json={"product": "mail", **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def client(self, key: str, computer: str, cache: Path | None = None) -> Client:
        return Client(
            self.base_url, key, "mail", "8.2.1", [self.public_key],
            computer_id=computer, cache_path=cache,
        )  # fmt: skip


@pytest.fixture
def live(store: Store) -> Any:
    token = staff_token(store, *auth.Scope, name="e2e")
    app = create_app(store.settings)
    with serve_in_thread(app, lifespan="on") as base_url:
        public_key = httpx.get(f"{base_url}/v1/keys").json()["keys"][0]["public_key"]
        server = LiveServer(base_url, token, public_key)
        yield server
        server.admin.close()


def test_valid_then_revoked(live: LiveServer) -> None:
    licence = live.licence(max_machines=2, max_users=50)
    with live.client(licence["key"], "a" * 64) as client:
        verdict = client.check_in(user_count=12)
        assert verdict.licence_status == "valid"
        assert verdict.licensed and not verdict.cached
        assert verdict.seats.allowed == 2 and verdict.seats.active == 1
        assert verdict.max_users == 50 and not verdict.users_over_limit
        url = f"/v1/admin/licences/{licence['id']}"
        patched = live.admin.patch(url, json={"status": "revoked"})
        assert patched.status_code == 200
        revoked = client.check_in(user_count=12)
        assert revoked.licence_status == "revoked"
        assert not revoked.licensed


def test_over_the_machine_limit(live: LiveServer) -> None:
    licence = live.licence(max_machines=1, overage="report")
    with live.client(licence["key"], "b" * 64) as first:
        assert first.check_in(user_count=1).seats.over_limit is False
    with live.client(licence["key"], "c" * 64) as second:
        verdict = second.check_in(user_count=1)
    assert verdict.seats.over_limit is True
    assert verdict.seats.active == 2


def test_async_client_and_unknown_key(live: LiveServer) -> None:
    async def check() -> str:
        async with AsyncClient(
            live.base_url, "NO-SUCH-LICENCE-KEY", "mail", "8.2.1", [live.public_key],
            computer_id="d" * 64,
        ) as client:  # fmt: skip
            return (await client.check_in(user_count=3)).licence_status

    assert asyncio.run(check()) == "unknown"


def test_cached_verdict_while_the_server_is_away(store: Store, tmp_path: Path) -> None:
    token = staff_token(store, *auth.Scope, name="e2e")
    cache = tmp_path / "verdict.cache"
    app = create_app(store.settings)
    with serve_in_thread(app, lifespan="on") as base_url:
        public_key = httpx.get(f"{base_url}/v1/keys").json()["keys"][0]["public_key"]
        live = LiveServer(base_url, token, public_key)
        licence = live.licence()
        with live.client(licence["key"], "e" * 64, cache) as client:
            assert client.check_in(user_count=5).cached is False
        live.admin.close()
    with live.client(licence["key"], "e" * 64, cache) as client:
        offline = client.check_in(user_count=5)
    assert offline.cached is True
    assert offline.licence_status == "valid"
    with (
        live.client(licence["key"], "e" * 64, tmp_path / "empty.cache") as client,
        pytest.raises(NoTrustedVerdict),
    ):
        client.check_in(user_count=5)


def test_update_and_signature_sets_reach_the_sdk(live: LiveServer) -> None:
    licence = live.licence(entitlements=["spam"], updates_until="2099-12-31")
    release = live.admin.post(
        "/v1/admin/releases",
        json={"product": "mail", "version": "8.10.0", "url": "https://dl.example/8.10.0",
              "sha256": "a" * 64, "size": 1234, "critical": True},
    )  # fmt: skip
    assert release.status_code == 201, release.text
    for version, deltas in ((41000, []), (41001, [{"from": 41000, "url": "https://dl.example/d",
                                                   "sha256": "b" * 64, "size": 12}])):  # fmt: skip
        published = live.admin.post(
            "/v1/admin/feeds/spam/versions",
            json={"version": version, "url": f"https://dl.example/spam-{version}",
                  "sha256": "c" * 64, "size": 900, "deltas": deltas},
        )  # fmt: skip
        assert published.status_code == 201, published.text
    with live.client(licence["key"], "f" * 64) as client:
        verdict = client.check_in(user_count=4, signatures={"spam": 41000, "antivirus": 7})
    assert verdict.update is not None
    assert (verdict.update.version, verdict.update.critical) == ("8.10.0", True)
    assert set(verdict.signatures) == {"spam"}  # not entitled to antivirus
    spam = verdict.signatures["spam"]
    assert spam.version == 41001
    assert spam.delta is not None and spam.delta.from_version == 41000


def test_an_install_three_sets_behind_gets_the_ordered_chain(live: LiveServer) -> None:
    licence = live.licence(entitlements=["spam"])
    for version in (41233, 41234, 41235, 41236):
        deltas = [] if version == 41233 else [
            {"from": version - 1, "url": f"https://dl.example/spam-{version - 1}-{version}",
             "sha256": "b" * 64, "size": 100}
        ]  # fmt: skip
        published = live.admin.post(
            "/v1/admin/feeds/spam/versions",
            json={"version": version, "url": f"https://dl.example/spam-{version}",
                  "sha256": "c" * 64, "size": 900, "deltas": deltas},
        )  # fmt: skip
        assert published.status_code == 201, published.text
    with live.client(licence["key"], "a" * 64) as client:
        spam = client.check_in(user_count=1, signatures={"spam": 41233}).signatures["spam"]
    assert [(step.from_version, step.to_version) for step in spam.plan] == [
        (41233, 41234),
        (41234, 41235),
        (41235, 41236),
    ]
    assert spam.delta is None  # older SDKs, which know no chain, fetch the full set


def test_news_reach_the_sdk_verified_and_revalidated(live: LiveServer) -> None:
    licence = live.licence(entitlements=["spam"])
    for version, deltas in ((7, []), (8, [{"from": 7, "url": "https://dl.example/spam-7-8",
                                           "sha256": "b" * 64, "size": 10}])):  # fmt: skip
        published = live.admin.post(
            "/v1/admin/feeds/spam/versions",
            json={"version": version, "url": f"https://dl.example/spam-{version}",
                  "sha256": "c" * 64, "size": 900, "deltas": deltas},
        )  # fmt: skip
        assert published.status_code == 201, published.text
    with live.client(licence["key"], "b" * 64) as client:
        updates = client.check_updates()
        feed = client.check_feed("spam", 7)
        again = client.check_feed("spam", 7)  # a 304, answered from the verified body
    assert updates.update is None and updates.issued_at < updates.expires_at
    assert feed == again
    assert feed.signature_set is not None
    assert [(step.from_version, step.to_version) for step in feed.signature_set.plan] == [(7, 8)]
