"""A served process moves what it holds once started out of the cycle collector's
sight (app/core/heap.py): a full collection then walks what requests left behind, not
the whole app, and no longer holds every waiting ping for a tenth of a second."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.stores import Store

# Starts the app as named, runs its start-up and shut-down, and reports the objects the
# collector no longer walks. In a process of its own: freezing is for the whole process.
REPORT_FROZEN = """
import gc, json, sys
from fastapi.testclient import TestClient
import app.main

factory = getattr(app.main, sys.argv[1])
with TestClient(factory()) as client:
    answered = client.get("/readyz").status_code
    frozen = gc.get_freeze_count()
print(json.dumps({"answered": answered, "frozen": frozen}))
"""


def frozen_after_start(store: Store, factory: str) -> dict[str, int]:
    finished = subprocess.run(
        [sys.executable, "-c", REPORT_FROZEN, factory],
        env={**os.environ, **store.env()},
        capture_output=True,
        timeout=120,
        check=True,
    )
    report: dict[str, int] = json.loads(finished.stdout.decode().strip().splitlines()[-1])
    return report


def test_the_served_app_freezes_what_it_holds_once_started(store: Store) -> None:
    served = frozen_after_start(store, "create_served_app")
    assert served["answered"] == 200
    # The modules, routes, schemas and engine: well over a hundred thousand objects.
    assert served["frozen"] > 100_000


def test_an_app_made_for_tests_or_embedding_leaves_the_collector_alone(store: Store) -> None:
    plain = frozen_after_start(store, "create_app")
    assert plain["answered"] == 200
    assert plain["frozen"] == 0
