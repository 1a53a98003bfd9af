"""The privacy inventory declares every table and column of the schema, and nothing more."""

from __future__ import annotations

import importlib
from pathlib import Path

from app.privacy.inventory import INVENTORY, compare_with_schema
from app.privacy.tables import metadata


def _import_every_model() -> None:
    """Tables defined anywhere in the app join the metadata, even if tables.py forgot them."""
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "app").rglob("models.py")):
        importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))


def test_every_column_of_the_schema_is_declared() -> None:
    _import_every_model()
    mismatch = compare_with_schema(metadata.tables)
    assert mismatch.undeclared == [], "declare these in app/privacy/inventory.py"
    assert mismatch.absent == [], "the inventory declares columns the schema lacks"


def test_every_table_is_declared_once() -> None:
    _import_every_model()
    names = [table.name for table in INVENTORY]
    assert sorted(names) == sorted(set(names)) == sorted(metadata.tables)
