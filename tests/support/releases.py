"""Release and signature-set factories: published through the staff API, as staff would."""

from __future__ import annotations

from typing import Any

import httpx

RELEASES = "/v1/admin/releases"
RELEASE_SHA256 = "0123456789abcdef" * 4
SET_SHA256 = "fedcba9876543210" * 4


def release_body(version: str, **fields: Any) -> dict[str, Any]:
    return {
        "product": "mail",
        "version": version,
        "url": f"https://dl.example.com/mail-{version}.tar.gz",
        "sha256": RELEASE_SHA256,
        "size": 123_456,
        **fields,
    }


async def publish_release(
    http: httpx.AsyncClient, headers: dict[str, str], version: str, **fields: Any
) -> dict[str, Any]:
    response = await http.post(RELEASES, json=release_body(version, **fields), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def set_body(version: int, *deltas: int, **fields: Any) -> dict[str, Any]:
    return {
        "version": version,
        "url": f"https://dl.example.com/spam-{version}",
        "sha256": SET_SHA256,
        "size": 9000,
        "deltas": [
            {
                "from": origin,
                "url": f"https://dl.example.com/spam-{origin}-{version}",
                "sha256": SET_SHA256,
                "size": 90,
            }
            for origin in deltas
        ],
        **fields,
    }


async def publish_set(
    http: httpx.AsyncClient, headers: dict[str, str], feed: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(f"/v1/admin/feeds/{feed}/versions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    published: dict[str, Any] = response.json()
    return published
