"""Paid download URLs: short-lived, bound to the licence, checked by a real nginx."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from callhome_client import Client, Update
from fastapi import FastAPI

from app.core import auth
from app.core.settings import Settings
from app.main import create_app
from app.releases.downloads import DownloadLinks
from tests.support.clocks import FrozenClock
from tests.support.licences import create_licence
from tests.support.nginx import serve_files
from tests.support.pings import ping_body, send_ping
from tests.support.releases import publish_release
from tests.support.stores import Store
from tests.support.tokens import staff_headers

SECRET = "download-secret-for-tests-0123456789"
CONTENT = b"mail 9.0 " * 1000


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("downloads") / "files"
    (root / "paid").mkdir(parents=True)
    (root / "paid" / "mail-9.0.tar.gz").write_bytes(CONTENT)
    (root / "paid" / "mail-9.1.tar.gz").write_bytes(CONTENT)
    with serve_files(root, SECRET) as base_url:
        yield base_url


def links_for(nginx: str, clock: FrozenClock) -> DownloadLinks:
    settings = Settings(download_secret=SECRET, download_signed_prefix=f"{nginx}/paid/")
    return DownloadLinks(settings, clock)


def test_a_fresh_url_downloads_and_a_stale_or_altered_one_is_refused(nginx: str) -> None:
    clock = FrozenClock()
    links = links_for(nginx, clock)
    licence, other_licence = uuid.uuid4(), uuid.uuid4()
    url = links.sign(f"{nginx}/paid/mail-9.0.tar.gz", licence)

    fresh = httpx.get(url)
    assert fresh.status_code == 200 and fresh.content == CONTENT

    assert httpx.get(f"{nginx}/paid/mail-9.0.tar.gz").status_code == 403  # unsigned
    other = url.replace(links.licence_token(licence), links.licence_token(other_licence))
    assert httpx.get(other).status_code == 403  # handed to another licence
    assert httpx.get(url.replace("mail-9.0", "mail-9.1")).status_code == 403  # another file
    signature = url.rsplit("s=", 1)[1]
    assert httpx.get(url.replace(signature, signature[::-1])).status_code == 403

    clock.advance(hours=-3)  # a URL made three hours ago, its lifetime one to two hours
    expired = links.sign(f"{nginx}/paid/mail-9.0.tar.gz", licence)
    assert httpx.get(expired).status_code == 410


def test_urls_outside_the_prefix_or_without_a_secret_are_offered_as_published(nginx: str) -> None:
    licence = uuid.uuid4()
    public = "https://mirror.example.com/mail-9.0.tar.gz"
    assert links_for(nginx, FrozenClock()).sign(public, licence) == public
    unsigned = DownloadLinks(Settings(), FrozenClock())
    assert unsigned.sign(f"{nginx}/paid/mail-9.0.tar.gz", licence).endswith("mail-9.0.tar.gz")


@pytest.fixture
async def paid_app(store: Store, nginx: str) -> AsyncIterator[FastAPI]:
    settings = store.settings.model_copy(
        update={"download_secret": SECRET, "download_signed_prefix": f"{nginx}/paid/"}
    )
    application = create_app(settings, clock=FrozenClock())
    async with application.router.lifespan_context(application):
        yield application


async def test_the_ping_offers_a_url_only_its_licence_can_use_and_the_sdk_fetches_it(
    paid_app: FastAPI, nginx: str, tmp_path: Path
) -> None:
    transport = httpx.ASGITransport(app=paid_app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callhome.test") as http:
        admin = await staff_headers(paid_app, *auth.Scope, name="rel")
        await publish_release(
            http, admin, "9.0", url=f"{nginx}/paid/mail-9.0.tar.gz",
            sha256=hashlib.sha256(CONTENT).hexdigest(), size=len(CONTENT),
        )  # fmt: skip
        licence = await create_licence(http, paid_app)
        answer = await send_ping(http, paid_app, ping_body(licence["key"], version="8.0"))
    offered = answer["update"]
    assert offered["url"].startswith(f"{nginx}/paid/mail-9.0.tar.gz?l=")

    update = Update(**{**offered, "notes_url": None})
    with Client("http://127.0.0.1:9", licence["key"], "mail", "8.0", [_any_key()]) as client:
        path = client.download(update, tmp_path / "mail-9.0.tar.gz")
    assert path.read_bytes() == CONTENT


def _any_key() -> str:
    return "A" * 43 + "="
