"""The layers of docs/architecture.md hold: every part of app/ sits on one, imports point down."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = (c for c in config["contracts"] if c["id"] == "layers")
    return [{name.strip() for name in layer.split("|")} for layer in contract["layers"]]


def test_every_part_of_the_app_sits_on_a_layer() -> None:
    parts = {
        f"app.{path.stem}"
        for path in (ROOT / "app").iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.stem != "__init__")
    }
    on_layers = set().union(*_layers())
    assert parts - on_layers == set(), "add these to the layers in pyproject.toml"
    assert on_layers - parts == set(), "these layers name nothing that exists"


def test_imports_point_down_the_layers() -> None:
    # A process of its own: the linter reconfigures logging, which would mute our loggers.
    linter = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [linter, "--config", ROOT / "pyproject.toml", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
