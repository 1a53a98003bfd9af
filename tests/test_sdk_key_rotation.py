"""A product that pins only the root key follows a signing key's rotation and retirement."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from callhome_client import Client, RollbackError, UnknownKeyError

from app.core import auth
from app.core.settings import Settings
from app.main import create_app
from client.tests.server_thread import serve_in_thread
from tests.support.keys import Keys
from tests.support.stores import Store
from tests.support.tokens import staff_token


def licence_key(base_url: str, token: str) -> str:
    created = httpx.post(
        f"{base_url}/v1/admin/licences",
        json={"product": "mail"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


def sdk(base_url: str, key: str, root_public_key: str, cache: Path) -> Client:
    return Client(
        base_url, key, "mail", "8.2.1", [],
        root_keys=[root_public_key], computer_id="d" * 64, cache_path=cache,
    )  # fmt: skip


def test_rotation_is_followed_and_a_retired_key_is_refused(store: Store, tmp_path: Path) -> None:
    keys = Keys(store, tmp_path)
    root = keys.run("init-root", "--root-key-out", str(tmp_path / "root.pem"))["root_public_key"]
    token = staff_token(store, *auth.Scope, name="e2e")
    cache = tmp_path / "verdict.json"
    with serve_in_thread(create_app(keys.settings), lifespan="on") as base_url:
        key = licence_key(base_url, token)
        with sdk(base_url, key, root, cache) as client:
            assert client.check_in(user_count=1).licensed

    rotated = keys.run(
        "rotate", "--root-key", str(tmp_path / "root.pem"),
        "--new-key-out", str(tmp_path / "online-2.pem"),
    )  # fmt: skip
    old_keyid = rotated["keys"][0]["keyid"]
    on_new_key = keys.settings.model_copy(update={"signing_key_file": tmp_path / "online-2.pem"})
    stale_list = keys.list_file.read_bytes()  # version 2: both keys in force
    keys.run("retire", old_keyid, "--root-key", str(tmp_path / "root.pem"))

    # A node on the new key and the new list: the SDK learns the list and trusts its answers.
    with (
        serve_in_thread(create_app(on_new_key), lifespan="on") as base_url,
        sdk(base_url, key, root, cache) as client,
    ):
        assert client.check_in(user_count=1).licensed

    # A node left behind: still on the retired key, deployed with the older list.
    (tmp_path / "stale").mkdir()
    stale_file = tmp_path / "stale" / "key-list.json"
    stale_file.write_bytes(stale_list)
    left_behind: Settings = keys.settings.model_copy(update={"key_list_file": stale_file})
    with (
        serve_in_thread(create_app(left_behind), lifespan="on") as base_url,
        sdk(base_url, key, root, cache) as client,
    ):
        # Its key list is older than the one trusted; its answers are signed by a key
        # retired before they were issued.
        with pytest.raises(UnknownKeyError, match="not in force"):
            client.check_in(user_count=1)
        with pytest.raises(RollbackError):
            client._core.learn_keys(200, httpx.get(f"{base_url}/v1/keys").content)
