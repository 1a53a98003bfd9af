"""The operator docs stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from app.core.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    documented = (DOCS / "configuration.md").read_text()
    missing = [
        f"CALLHOME_{name.upper()}"
        for name in Settings.model_fields
        if f"`CALLHOME_{name.upper()}`" not in documented
    ]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_the_load_balancer_example_is_the_configuration_the_cluster_runs() -> None:
    shipped = (DOCS.parent / "deploy" / "haproxy.cfg").read_text()
    assert f"```\n{shipped}```\n" in (DOCS / "deploy.md").read_text()
