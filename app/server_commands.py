"""`callhome serve`, `callhome db` and `callhome keys`: running the app, its store and its key."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from app.core import migrations
from app.core.clock import rfc3339
from app.core.commands import JsonFlag, emit, now, require_store
from app.core.database import Database
from app.core.keylist import (
    DEFAULT_VALID_DAYS,
    PublishedKeys,
    add_key,
    first_key_list,
    key_list_path,
    keyid_of,
    private_key_of,
    public_key_b64,
    read_private_key,
    renew,
    retire_key,
    rotate_root,
)
from app.core.secrets import read_or_create_secret_file
from app.core.settings import Settings
from app.core.signing import Signer, load_signer, new_private_key_pem, signer_from_pem
from app.ingest.repository import ensure_ping_partitions

db_app = typer.Typer(help="Database migrations.")
keys_app = typer.Typer(help="The signing keys, the offline root key and the key list it signs.")


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the API (the embedded default migrates its SQLite file first)."""
    import uvicorn

    from app.core.logging import configure_logging, logging_config
    from app.core.slow_clients import BoundedHttpToolsProtocol

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_embedded:
        asyncio.run(_upgrade(settings))
    workers = workers or settings.workers
    if workers > 1 and settings.metrics_enabled:
        from app.core.metrics import prepare_multiprocess_dir

        # Each worker counts its own; /metrics, on whichever answers, sums them.
        prepare_multiprocess_dir(settings.data_dir)
    uvicorn.run(
        "app.main:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=logging_config(settings.log_level, settings.log_format),
        proxy_headers=False,
        http=BoundedHttpToolsProtocol,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


async def _upgrade(settings: Settings, revision: str = "head") -> None:
    database = Database(settings)
    try:
        await migrations.upgrade(database.engine, revision, settings=settings)
        async with database.engine.begin() as connection:
            await ensure_ping_partitions(connection, now().date())
    finally:
        await database.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (and create the coming days' ping partitions on PostgreSQL)."""
    asyncio.run(_upgrade(Settings(), revision))
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Roll migrations back to REVISION ("base" removes every table)."""

    async def run() -> None:
        settings = Settings()
        database = Database(settings)
        try:
            await migrations.downgrade(database.engine, revision, settings=settings)
        finally:
            await database.dispose()

    asyncio.run(run())
    typer.echo(f"database at {revision}")


@keys_app.command("show")
def keys_show(as_json: JsonFlag = False) -> None:
    """Print the public key that SDKs pin, and its id."""
    settings = Settings()
    require_store(settings)
    _emit_public_key(load_signer(settings), as_json)


@keys_app.command("generate")
def keys_generate(
    path: Annotated[Path, typer.Argument(help="The new key file (PKCS#8 PEM, mode 0600).")],
    as_json: JsonFlag = False,
) -> None:
    """Write a new signing key to PATH and print its id and public key (never overwrites)."""
    if path.exists():
        _fail(f"{path} exists already; a signing key is never overwritten (the SDKs pin it)")
    _emit_public_key(
        signer_from_pem(read_or_create_secret_file(path, new_private_key_pem())), as_json
    )


def _emit_public_key(signer: Signer, as_json: bool) -> None:
    document = {"keyid": signer.key_id, "algorithm": "ed25519", "public_key": signer.public_key_b64}
    emit(as_json, document, f"keyid {signer.key_id}\npublic key {signer.public_key_b64}")


RootKeyOption = Annotated[
    Path, typer.Option("--root-key", help="The root private key (kept offline).", exists=True)
]
ValidDaysOption = Annotated[
    int, typer.Option("--valid-days", min=1, help="Days until the new key list expires.")
]


class NewKeyFile:
    """A fresh Ed25519 key, written (PKCS#8 PEM, owner only) once the change it serves holds."""

    def __init__(self, path: Path):
        if path.exists():
            _fail(f"{path} exists: choose a new file")
        self.path = path
        self._pem = new_private_key_pem()
        self.key = private_key_of(self._pem)

    def write(self) -> None:
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            _fail(f"{self.path} exists: choose a new file")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self._pem)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _key_list_file(settings: Settings) -> Path:
    path = key_list_path(settings)
    if path is None:
        _fail("set CALLHOME_KEY_LIST_FILE: where every node reads the key list")
    return path


def _change_key_list(
    change: Callable[[PublishedKeys, Settings], PublishedKeys], as_json: bool, done: str
) -> None:
    settings = Settings()
    path = _key_list_file(settings)
    try:
        published = change(PublishedKeys.read(path), settings)
    except ValueError as error:  # KeyListError, or a root key file that is no key
        _fail(str(error))
    published.write(path)
    key_list = published.key_list
    document = {
        "key_list_file": str(path),
        "version": key_list.version,
        "expires_at": rfc3339(key_list.expires_at),
        "keys": [key.to_json() for key in key_list.keys],
    }
    emit(
        as_json,
        document,
        f"{done}\nkey list version {key_list.version} written to {path}; deploy it to every node",
    )


@keys_app.command("init-root")
def keys_init_root(
    root_key_out: Annotated[
        Path, typer.Option("--root-key-out", help="New file for the root private key.")
    ],
    valid_days: ValidDaysOption = DEFAULT_VALID_DAYS,
    as_json: JsonFlag = False,
) -> None:
    """Make the root key, and the first key list (the signing key in force) signed by it.

    Keep the root key file offline; pin the printed public key in the product.
    """
    settings = Settings()
    path = _key_list_file(settings)
    if path.exists():
        _fail(f"{path} exists: this store has a root already (see `keys rotate-root`)")
    new_root = NewKeyFile(root_key_out)
    root = new_root.key
    signer = load_signer(settings)
    published = first_key_list(root, signer.public_key_raw, now(), valid_days)
    new_root.write()
    published.write(path)
    document = {"root_keyid": keyid_of(root), "root_public_key": public_key_b64(root)}
    emit(
        as_json,
        document,
        f"root keyid {document['root_keyid']}\nroot public key {document['root_public_key']}\n"
        f"pin the root public key in the product; move {root_key_out} offline",
    )


@keys_app.command("rotate")
def keys_rotate(
    root_key: RootKeyOption,
    new_key_out: Annotated[
        Path, typer.Option("--new-key-out", help="New file for the new online private key.")
    ],
    valid_days: ValidDaysOption = DEFAULT_VALID_DAYS,
    as_json: JsonFlag = False,
) -> None:
    """Add a new online signing key to the key list; the old one verifies until retired."""

    def change(published: PublishedKeys, _: Settings) -> PublishedKeys:
        new_key = NewKeyFile(new_key_out)
        changed = add_key(
            published, read_private_key(root_key), bytes(new_key.key.verify_key), now(), valid_days
        )
        new_key.write()
        return changed

    _change_key_list(
        change, as_json, f"new signing key in {new_key_out}: point CALLHOME_SIGNING_KEY_FILE at it"
    )


@keys_app.command("retire")
def keys_retire(
    keyid: Annotated[str, typer.Argument(help="The key to end.")],
    root_key: RootKeyOption,
    valid_days: ValidDaysOption = DEFAULT_VALID_DAYS,
    as_json: JsonFlag = False,
) -> None:
    """End a signing key: documents it signs from now on are refused."""
    _change_key_list(
        lambda published, _: retire_key(
            published, read_private_key(root_key), keyid, now(), valid_days
        ),
        as_json,
        f"key {keyid} retired",
    )


@keys_app.command("renew")
def keys_renew(
    root_key: RootKeyOption,
    valid_days: ValidDaysOption = DEFAULT_VALID_DAYS,
    as_json: JsonFlag = False,
) -> None:
    """Sign the same key list again with a later expiry (do it before the list expires)."""
    _change_key_list(
        lambda published, _: renew(published, read_private_key(root_key), now(), valid_days),
        as_json,
        "key list renewed",
    )


@keys_app.command("rotate-root")
def keys_rotate_root(
    root_key: RootKeyOption,
    new_root_key_out: Annotated[
        Path, typer.Option("--new-root-key-out", help="New file for the new root private key.")
    ],
    valid_days: ValidDaysOption = DEFAULT_VALID_DAYS,
    as_json: JsonFlag = False,
) -> None:
    """Replace the root key: the new root is signed by the old, so pinned SDKs follow."""

    def change(published: PublishedKeys, _: Settings) -> PublishedKeys:
        new_root = NewKeyFile(new_root_key_out)
        changed = rotate_root(
            published, read_private_key(root_key), new_root.key, now(), valid_days
        )
        new_root.write()
        return changed

    _change_key_list(change, as_json, f"new root key in {new_root_key_out}: keep it offline")
