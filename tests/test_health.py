"""Liveness, readiness, and errors that always speak problem+json."""

from __future__ import annotations

import httpx


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200


async def test_unknown_routes_answer_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    wrong_method = await client.delete("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405
