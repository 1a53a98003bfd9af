"""The root key, the key list it signs, rotation and retirement, and GET /v1/keys."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from app.core.keylist import PublishedKeys, follow_root_chain
from app.core.secrets import MissingSecret
from app.core.signing import key_id, new_private_key_pem
from app.main import create_app
from tests.support.keys import Keys
from tests.support.stores import Store


def verified_keys(document: dict[str, Any], pinned_root: str) -> set[str]:
    """The keyids the key list vouches for, checked from the pinned root as an SDK would."""
    root_keyid = follow_root_chain(document["root_chain"], _pin(pinned_root)).keyid
    published = PublishedKeys.of(document)
    key_list = published.verified_key_list()
    assert key_list.root_keyid == root_keyid
    return {key.keyid for key in key_list.keys}


def _pin(public_key: str) -> dict[str, str]:
    return {key_id(base64.b64decode(public_key)): public_key}


async def test_rotation_adds_a_key_both_verify_then_retire_ends_the_old_one(
    store: Store, tmp_path: Path
) -> None:
    keys = Keys(store, tmp_path)
    unlisted = await keys.served(store.settings)
    assert unlisted["key_list"] is None and len(unlisted["keys"]) == 1
    old_keyid = unlisted["keys"][0]["keyid"]

    root = await asyncio.to_thread(
        keys.run, "init-root", "--root-key-out", str(tmp_path / "root.pem")
    )
    assert stat.S_IMODE((tmp_path / "root.pem").stat().st_mode) == 0o600
    served = await keys.served()
    assert verified_keys(served, root["root_public_key"]) == {old_keyid}
    assert [key["keyid"] for key in served["keys"]] == [old_keyid]

    rotated = await asyncio.to_thread(
        keys.run, "rotate", "--root-key", str(tmp_path / "root.pem"),
        "--new-key-out", str(tmp_path / "online-2.pem"),
    )  # fmt: skip
    new_keyid = next(key["keyid"] for key in rotated["keys"] if key["keyid"] != old_keyid)
    assert rotated["version"] == 2
    # The overlap: nodes still signing with the old key and nodes on the new one both verify.
    on_new_key = keys.settings.model_copy(update={"signing_key_file": tmp_path / "online-2.pem"})
    for settings in (keys.settings, on_new_key):
        served = await keys.served(settings)
        assert {key["keyid"] for key in served["keys"]} == {old_keyid, new_keyid}
        assert verified_keys(served, root["root_public_key"]) == {old_keyid, new_keyid}

    await asyncio.to_thread(keys.run, "retire", old_keyid, "--root-key", str(tmp_path / "root.pem"))
    served = await keys.served(on_new_key)
    assert [key["keyid"] for key in served["keys"]] == [new_keyid]
    with pytest.raises(MissingSecret, match="not in force"):
        create_app(keys.settings)  # a node left on the retired key refuses to start
    assert "last key in force" in await asyncio.to_thread(
        keys.refused, "retire", new_keyid, "--root-key", str(tmp_path / "root.pem")
    )


async def test_only_the_root_changes_the_list_and_a_new_root_is_followed(
    store: Store, tmp_path: Path
) -> None:
    keys = Keys(store, tmp_path)
    root = await asyncio.to_thread(
        keys.run, "init-root", "--root-key-out", str(tmp_path / "root.pem")
    )
    assert "exists" in await asyncio.to_thread(
        keys.refused, "init-root", "--root-key-out", str(tmp_path / "root-again.pem")
    )
    impostor = tmp_path / "impostor.pem"
    impostor.write_bytes(new_private_key_pem())
    before = keys.list_file.read_bytes()
    assert "not the current root" in await asyncio.to_thread(
        keys.refused,
        "rotate",
        "--root-key",
        str(impostor),
        "--new-key-out",
        str(tmp_path / "k.pem"),
    )
    assert keys.list_file.read_bytes() == before and not (tmp_path / "k.pem").exists()

    await asyncio.to_thread(
        keys.run, "rotate-root", "--root-key", str(tmp_path / "root.pem"),
        "--new-root-key-out", str(tmp_path / "root-2.pem"),
    )  # fmt: skip
    served = await keys.served()
    # An SDK that pinned the first root follows the chain to the second.
    assert len(verified_keys(served, root["root_public_key"])) == 1
    assert "not the current root" in await asyncio.to_thread(
        keys.refused, "renew", "--root-key", str(tmp_path / "root.pem")
    )
    renewed = await asyncio.to_thread(keys.run, "renew", "--root-key", str(tmp_path / "root-2.pem"))
    assert renewed["version"] == 3


async def test_a_tampered_key_list_stops_the_server(store: Store, tmp_path: Path) -> None:
    keys = Keys(store, tmp_path)
    await asyncio.to_thread(keys.run, "init-root", "--root-key-out", str(tmp_path / "root.pem"))
    document = json.loads(keys.list_file.read_text())
    payload = json.loads(document["key_list"]["payload"])
    payload["expires_at"] = "2999-01-01T00:00:00Z"
    document["key_list"]["payload"] = json.dumps(payload)
    keys.list_file.write_text(json.dumps(document))

    with pytest.raises(MissingSecret, match="not a valid key list"):
        create_app(keys.settings)
