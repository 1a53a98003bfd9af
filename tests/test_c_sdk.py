"""The C SDK (client-c/): built with cc, it passes the conformance vectors and checks in."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from app.core import auth
from app.main import create_app
from client.tests.server_thread import serve_in_thread
from tests.support.stores import Store, running_in_ci
from tests.support.tokens import staff_token

ROOT = Path(__file__).parents[1]
C_SDK = ROOT / "client-c"
LIBRARIES = ("libsodium", "libcurl", "jansson")


def build(program: str, output: Path) -> Path:
    """Compile the SDK with one of its programs; skip (fail in CI) without the libraries."""
    flags = None
    if shutil.which("cc") and shutil.which("pkg-config"):
        found = subprocess.run(
            ["pkg-config", "--cflags", "--libs", *LIBRARIES], capture_output=True, text=True
        )
        flags = found.stdout.split() if found.returncode == 0 else None
    if flags is None:
        message = (
            "the C SDK needs cc, pkg-config, libsodium-dev, libcurl4-openssl-dev, libjansson-dev"
        )
        if running_in_ci():
            pytest.fail(f"{message} (make test installs them)")
        pytest.skip(message)
    subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", f"-I{C_SDK / 'include'}",
         str(C_SDK / "src" / "callhome.c"), str(C_SDK / "tests" / program), "-o", str(output),
         *flags],
        check=True,
    )  # fmt: skip
    return output


def test_the_c_sdk_reaches_every_vectors_decision(tmp_path: Path) -> None:
    runner = build("run_vectors.c", tmp_path / "run_vectors")
    vectors = ROOT / "client" / "conformance" / "vectors.json"
    count = len(json.loads(vectors.read_text(encoding="utf-8"))["vectors"])

    result = subprocess.run([str(runner), str(vectors)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(f"0 of {count} vectors failed")


def test_the_c_sdk_checks_in_and_frees_its_seat_with_the_real_server(
    store: Store, tmp_path: Path
) -> None:
    check_in = build("check_in.c", tmp_path / "check_in")
    deactivate = build("deactivate.c", tmp_path / "deactivate")
    token = staff_token(store, *auth.Scope, name="c-sdk")
    with serve_in_thread(create_app(store.settings), lifespan="on") as base_url:
        public_key = httpx.get(f"{base_url}/v1/keys").json()["keys"][0]["public_key"]
        created = httpx.post(
            f"{base_url}/v1/admin/licences",
            json={"product": "mail"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        request = json.dumps(
            {"licence_key": created.json()["key"], "product": "mail", "version": "8.2.1",
             "computer_id": "e" * 64, "user_count": 3, "nonce": "c-sdk-nonce-0123456789"},
            separators=(",", ":"),
        )  # fmt: skip
        result = subprocess.run(
            [str(check_in), base_url, public_key, request], capture_output=True, text=True
        )
        other_key = subprocess.run(
            [str(check_in), base_url, "A" * 43 + "=", request], capture_output=True, text=True
        )
        freeing = json.dumps(
            {"licence_key": created.json()["key"], "product": "mail", "computer_id": "e" * 64,
             "nonce": "c-sdk-nonce-9876543210"},
            separators=(",", ":"),
        )  # fmt: skip
        deactivation = [str(deactivate), base_url, public_key, freeing]
        freed = subprocess.run(deactivation, capture_output=True, text=True)
        again = subprocess.run(deactivation, capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "valid licensed"
    assert other_key.stdout.strip() == "refused unknown-key"
    assert freed.stdout.strip() == "deactivated seat-free", freed.stdout + freed.stderr
    assert again.stdout.strip() == "not_seated seat-free"
