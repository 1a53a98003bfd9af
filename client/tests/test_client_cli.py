"""The command line: a dry run that shows the exact body, verdicts as JSON, honest exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from callhome_client._cli import main
from client_support import LICENCE_KEY, PRODUCT, VERSION
from hostile_server import HostileServer, Misbehaviour, public_key_base64


def _arguments(base_url: str, public_key: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "check-in",
        "--server", base_url,
        "--licence", LICENCE_KEY,
        "--product", PRODUCT,
        "--version", VERSION,
        "--public-key", public_key,
        "--computer-id-file", str(tmp_path / "computer-id"),
        "--timeout", "0.3",
        *extra,
    ]  # fmt: skip


def test_a_dry_run_prints_the_exact_body_and_sends_nothing(
    server: HostileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = _arguments(server.base_url, server.public_key, tmp_path, "--users", "12")

    assert main([*arguments, "--dry-run"]) == 0

    printed = capsys.readouterr().out
    body = json.loads(printed)
    assert set(body) == {"licence_key", "product", "version", "computer_id", "user_count", "nonce"}
    assert body["user_count"] == 12
    assert body["computer_id"] == (tmp_path / "computer-id").read_text().strip()
    assert printed == json.dumps(body, separators=(",", ":")) + "\n", "compact, as sent"
    assert server.requests == []


def test_a_dry_run_shows_the_optional_fields_only_when_given(
    server: HostileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ("--channel", "beta", "--signature", "spam=41234", "--dry-run")

    assert main(_arguments(server.base_url, server.public_key, tmp_path, *extra)) == 0

    body = json.loads(capsys.readouterr().out)
    assert set(body) == {
        "licence_key", "product", "version", "computer_id", "user_count", "nonce",
        "channel", "signatures",
    }  # fmt: skip
    assert body["signatures"] == {"spam": 41234}


def test_a_trusted_verdict_is_printed_as_json_without_the_key(
    server: HostileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_arguments(server.base_url, server.public_key, tmp_path, "--users", "3")) == 0

    output = capsys.readouterr()
    verdict = json.loads(output.out)
    assert verdict["licence_status"] == "valid"
    assert verdict["cached"] is False
    assert verdict["seats"]["seat"] == "granted"
    assert LICENCE_KEY not in output.out + output.err
    assert (tmp_path / "computer-id").read_text().strip() not in output.out + output.err


@pytest.mark.parametrize(
    ("misbehaviour", "exit_code"),
    [
        (Misbehaviour.WRONG_KEY, 3),
        (Misbehaviour.TAMPERED_BODY, 3),
        (Misbehaviour.UNSIGNED, 3),
        (Misbehaviour.STALE, 3),
        (Misbehaviour.ERROR_500, 4),
        (Misbehaviour.REJECT_422, 5),
    ],
    ids=lambda value: value.name if isinstance(value, Misbehaviour) else str(value),
)
def test_an_answer_that_cannot_be_trusted_exits_non_zero(
    server: HostileServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    misbehaviour: Misbehaviour,
    exit_code: int,
) -> None:
    server.misbehaviour = misbehaviour

    assert main(_arguments(server.base_url, server.public_key, tmp_path)) == exit_code

    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.startswith("callhome-client: ")
    assert LICENCE_KEY not in output.err


def test_an_unpinned_key_exits_non_zero(
    server: HostileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unpinned = public_key_base64(server.other_key)

    assert main(_arguments(server.base_url, unpinned, tmp_path)) == 3


def test_no_server_exits_non_zero_without_a_cache_and_zero_with_a_leased_one(
    server: HostileServer, tmp_path: Path, closed_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = ("--cache", str(tmp_path / "verdict.json"))
    assert main(_arguments(closed_url, server.public_key, tmp_path)) == 4
    assert main(_arguments(server.base_url, server.public_key, tmp_path, *cache)) == 0
    capsys.readouterr()

    assert main(_arguments(closed_url, server.public_key, tmp_path, *cache)) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True


def test_python_dash_m_runs_the_command_line(server: HostileServer, tmp_path: Path) -> None:
    arguments = _arguments(server.base_url, server.public_key, tmp_path, "--dry-run")
    completed = subprocess.run(
        [sys.executable, "-m", "callhome_client", *arguments],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["product"] == PRODUCT
