"""Licence factories: licences made through the staff API, as staff would make them."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from app.core import auth
from tests.support.tokens import staff_headers


async def create_licence(http: httpx.AsyncClient, app: FastAPI, **fields: Any) -> dict[str, Any]:
    headers = await staff_headers(app, auth.Scope.LICENCES_WRITE, name="maker")
    response = await http.post(
        "/v1/admin/licences", json={"product": "mail", **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
