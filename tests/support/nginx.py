"""Debian's nginx on a loopback port, checking download links with `secure_link`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port
from tests.support.stores import running_in_ci

# The configuration docs/deploy.md gives operators, with the test's paths and secret.
SECURE_LINK = """
        location /paid/ {{
            secure_link $arg_s,$arg_e;
            secure_link_md5 "$secure_link_expires$uri$arg_l {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
        }}
"""


def nginx_binary() -> str:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        if running_in_ci():
            pytest.fail(
                "no nginx: `make test` installs Debian's nginx; CI must test download links"
            )
        pytest.skip("download link tests need Debian's nginx (make test installs it as root)")
    return binary


@contextlib.contextmanager
def serve_files(root: Path, secret: str) -> Iterator[str]:
    """nginx serving `root` on a free loopback port, /paid/ behind secure_link; its base URL."""
    binary = nginx_binary()
    prefix = root.parent / "nginx"
    prefix.mkdir()
    port = free_port()
    user = "user root;" if os.getuid() == 0 else ""
    config = prefix / "nginx.conf"
    config.write_text(
        f"""
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
{SECURE_LINK.format(secret=secret)}
    }}
}}
"""
    )
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(config)])
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(base_url + "/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((prefix / "error.log").read_text()) from None
                time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
