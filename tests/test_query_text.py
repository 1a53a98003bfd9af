"""Free-text query parameters are held to the rules of body fields, on both stores."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.core import auth
from tests.support.tokens import issue_token

ORIGIN = "https://callhome.test"
# Route and parameter: every free-text filter the staff API and pages take.
TEXT_PARAMETERS = [
    ("/v1/admin/licences", "product"),
    ("/v1/admin/licences", "key_last4"),
    ("/v1/admin/licences", "cursor"),
    ("/v1/admin/abuse-reports", "product"),
    ("/v1/admin/abuse-reports", "cursor"),
    ("/v1/admin/abuse-reports/export", "product"),
    ("/v1/admin/audit-log", "actor"),
    ("/v1/admin/audit-log", "target_id"),
    ("/v1/admin/releases", "product"),
    ("/v1/admin/releases", "channel"),
    ("/v1/admin/feeds/malware/versions", "cursor"),
    ("/staff/licences", "search"),
    ("/staff/licences", "product"),
    ("/staff/licences", "cursor"),
    ("/staff/reports", "product"),
    ("/staff/reports", "cursor"),
]
# Four characters each, so a length rule is never what refuses them.
CONTROL_TEXT = ["\x00abc", "ab\x00c", "abc\x1b", "a\nbc", "ab\x7fc"]


@pytest.mark.parametrize(("route", "parameter"), TEXT_PARAMETERS)
async def test_control_characters_in_a_query_are_refused(
    app: FastAPI, route: str, parameter: str
) -> None:
    token = await issue_token(app, *auth.Scope)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        signed_in = await http.post(
            "/staff/sign-in", data={"token": token}, headers={"Origin": ORIGIN}
        )
        assert signed_in.status_code == 303
        for text in CONTROL_TEXT:
            response = await http.get(
                route, params={parameter: text}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 422, (text, response.status_code)
