"""The `callhome keys` commands and GET /v1/keys, for one store and one key list file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from app.cli import app as cli
from app.core.settings import Settings
from app.main import create_app
from tests.support.clocks import FrozenClock
from tests.support.stores import Store

runner = CliRunner()


class Keys:
    """The `callhome keys` commands and GET /v1/keys, for one store and one key list file."""

    def __init__(self, store: Store, folder: Path):
        self.folder = folder
        self.list_file = folder / "key-list.json"
        self.env = {**store.env(), "CALLHOME_KEY_LIST_FILE": str(self.list_file)}
        self.settings = store.settings.model_copy(update={"key_list_file": self.list_file})

    def run(self, *args: str) -> Any:
        result = runner.invoke(cli, ["keys", *args, "--json"], env=self.env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def refused(self, *args: str) -> str:
        result = runner.invoke(cli, ["keys", *args], env=self.env)
        assert result.exit_code == 1, result.output
        return result.output

    async def served(self, settings: Settings | None = None) -> dict[str, Any]:
        app = create_app(settings or self.settings, clock=FrozenClock())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
            response = await http.get("/v1/keys")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document
