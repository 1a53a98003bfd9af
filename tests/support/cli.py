"""The `callhome` command line, run in-process against a test's store and off the event loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from app.cli import app as cli
from tests.support.stores import Store

runner = CliRunner()


async def invoke(store: Store, *args: str) -> Result:
    """The command's result, whatever its exit code."""
    return await asyncio.to_thread(runner.invoke, cli, list(args), env=store.env())


async def callhome(store: Store, *args: str) -> str:
    """What a command that must succeed printed."""
    result = await invoke(store, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


async def callhome_json(store: Store, *args: str) -> Any:
    """What a command that must succeed printed with `--json`, decoded."""
    return json.loads(await callhome(store, *args, "--json"))
