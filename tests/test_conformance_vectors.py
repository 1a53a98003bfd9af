"""The committed conformance vectors are what the server's own code makes today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

GENERATOR = Path(__file__).parents[1] / "client" / "conformance" / "generate.py"


def test_the_vectors_are_generated_from_the_server_code() -> None:
    spec = importlib.util.spec_from_file_location("conformance_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)

    committed = generator.VECTORS.read_text(encoding="utf-8")

    assert committed == generator.rendered(), (
        "client/conformance/vectors.json is stale: run client/conformance/generate.py"
    )
