"""The licence administration API: lifecycle, scopes, pagination and bad input."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core import auth
from app.core.audit import AuditEntry
from app.licences.models import Licence, LicenceKey
from tests.support import app_parts
from tests.support.clocks import FrozenClock
from tests.support.tokens import bearer, staff_headers

LICENCES = "/v1/admin/licences"


async def count_licences(app: FastAPI) -> int:
    async with app_parts.database(app).sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Licence)) or 0)


async def create(http: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await http.post(LICENCES, json={"product": "mail", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_created_licence_shows_its_generated_key_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await create(client, admin_headers, max_machines=3, entitlements=["spam", "spam"])
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}", created["key"])
    assert created["key_last4"] == created["key"].replace("-", "")[-4:]
    assert created["entitlements"] == ["spam"]
    assert created["status"] == "active"
    assert created["activity_window_days"] == 7

    shown = await client.get(f"{LICENCES}/{created['id']}", headers=admin_headers)
    assert shown.status_code == 200
    assert "key" not in shown.json()
    assert created["key"] not in shown.text


async def test_keys_are_unique_as_customers_type_them(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    await create(client, admin_headers, key="ABCD-EFGH-IJKL-MNPQ")
    again = await client.post(
        LICENCES, json={"product": "mail", "key": "abcd efgh ijkl mnpq"}, headers=admin_headers
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "abcd" not in again.text.lower()
    assert await count_licences(app) == 1


async def test_no_key_is_stored_in_the_clear(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    created = await create(client, admin_headers, key="SECRET-CANARY-KEY-77")
    async with app_parts.database(app).sessions() as session:
        licence = await session.get(Licence, uuid.UUID(created["id"]))
        keys = list(
            await session.scalars(
                select(LicenceKey.key_hash).where(LicenceKey.licence_id == uuid.UUID(created["id"]))
            )
        )
    assert licence is not None
    assert len(keys) == 1
    assert "CANARY" not in keys[0].upper()
    assert len(keys[0]) == 64
    assert licence.key_last4 == "EY77"


async def test_status_changes_follow_the_lifecycle(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    licence = await create(client, admin_headers)
    url = f"{LICENCES}/{licence['id']}"
    for status in ("suspended", "active", "revoked"):
        response = await client.patch(url, json={"status": status}, headers=admin_headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    reinstated = await client.patch(url, json={"status": "active"}, headers=admin_headers)
    assert reinstated.status_code == 409
    shown = await client.get(url, headers=admin_headers)
    assert shown.json()["status"] == "revoked"


async def test_extend_changes_only_the_given_fields(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    licence = await create(client, admin_headers, max_users=50, expires_at="2027-01-01")
    response = await client.patch(
        f"{LICENCES}/{licence['id']}",
        json={"expires_at": "2028-06-30T12:00:00Z", "updates_until": "2028-06-30"},
        headers=admin_headers,
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["expires_at"] == "2028-06-30T12:00:00Z"
    assert changed["updates_until"] == "2028-06-30"
    assert changed["max_users"] == 50
    cleared = await client.patch(
        f"{LICENCES}/{licence['id']}", json={"max_users": None}, headers=admin_headers
    )
    assert cleared.json()["max_users"] is None
    async with app_parts.database(app).sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        actors = set(await session.scalars(select(AuditEntry.actor)))
    assert actions == ["licence.create", "licence.change", "licence.change"]
    assert actors == {"admin"}


async def test_pages_cover_every_licence_once_while_new_ones_arrive(
    client: httpx.AsyncClient, admin_headers: dict[str, str], clock: FrozenClock
) -> None:
    made = set()
    for _ in range(7):
        made.add((await create(client, admin_headers))["id"])
        clock.advance(seconds=1)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(LICENCES, params=params, headers=admin_headers)).json()
        seen += [item["id"] for item in page["items"]]
        if len(seen) == 3:
            await create(client, admin_headers)  # arrives mid-listing, newest: not in later pages
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == made


async def test_list_filters(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    mail = await create(client, admin_headers, product="mail", key="MAILKEY-ABCD-EFGH-0001")
    await create(client, admin_headers, product="fax")
    await client.patch(
        f"{LICENCES}/{mail['id']}", json={"status": "suspended"}, headers=admin_headers
    )

    async def ids(**params: str) -> list[str]:
        page = await client.get(LICENCES, params=params, headers=admin_headers)
        assert page.status_code == 200
        return [item["id"] for item in page.json()["items"]]

    assert await ids(product="mail") == [mail["id"]]
    assert await ids(status="suspended") == [mail["id"]]
    assert await ids(key_last4="0001") == [mail["id"]]
    assert await ids(product="nothing") == []


async def test_scopes_guard_every_route(client: httpx.AsyncClient, app: FastAPI) -> None:
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    reports_only = await staff_headers(app, auth.Scope.REPORTS_READ)
    assert (await client.get(LICENCES)).status_code == 401
    assert (await client.get(LICENCES, headers=bearer("chs_not-a-real-token"))).status_code == 401
    assert (await client.get(LICENCES, headers=reports_only)).status_code == 403
    assert (await client.get(LICENCES, headers=reader)).status_code == 200
    denied = await client.post(LICENCES, json={"product": "mail"}, headers=reader)
    assert denied.status_code == 403
    assert denied.json()["status"] == 403
    assert await count_licences(app) == 0


async def test_revoked_and_expired_tokens_are_refused(
    client: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    async with app_parts.database(app).sessions() as session, session.begin():
        expiring = await auth.create_token(
            session,
            name="temp",
            scopes=[auth.Scope.LICENCES_READ],
            now=clock.now(),
            expires_at=clock.now() + dt.timedelta(hours=1),
        )
        revoked = await auth.create_token(
            session, name="gone", scopes=[auth.Scope.LICENCES_READ], now=clock.now()
        )
        await auth.revoke_token(session, revoked.token.id, clock.now())
    assert (await client.get(LICENCES, headers=bearer(revoked.secret))).status_code == 401
    assert (await client.get(LICENCES, headers=bearer(expiring.secret))).status_code == 200
    clock.advance(hours=2)
    assert (await client.get(LICENCES, headers=bearer(expiring.secret))).status_code == 401


BAD_BODIES = [
    {"product": "Mail!"},
    {"product": "x" * 33},
    {"product": "mail", "max_machines": 0},
    {"product": "mail", "max_machines": "three"},
    {"product": "mail", "max_users": -1},
    {"product": "mail", "key": "short"},
    {"product": "mail", "key": "K" * 129},
    {"product": "mail", "key": "tab\tinside-key"},
    {"product": "mail", "overage": "ignore"},
    {"product": "mail", "entitlements": ["Spam Feed"]},
    {"product": "mail", "entitlements": "spam"},
    {"product": "mail", "expires_at": "next tuesday"},
    {"product": "mail", "customer_email": "someone@example.com"},
    {"max_machines": 2},
    [],
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
async def test_bad_licence_bodies_are_refused_and_write_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: FastAPI, body: Any
) -> None:
    response = await client.post(LICENCES, json=body, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] and problem["type"]
    assert "someone@example.com" not in response.text
    assert "inside-key" not in response.text
    assert await count_licences(app) == 0


async def test_bad_patches_and_paths(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    licence = await create(client, admin_headers)
    url = f"{LICENCES}/{licence['id']}"
    for body in (
        {"status": "expired"},
        {"max_machines": None},
        {"max_machines": 0},
        {"status": None},
        {"key": "NEWKEY-1234"},
    ):
        response = await client.patch(url, json=body, headers=admin_headers)
        assert response.status_code == 422, body
    unchanged = (await client.get(url, headers=admin_headers)).json()
    assert unchanged["max_machines"] == licence["max_machines"]
    assert unchanged["updated_at"] == licence["updated_at"]
    assert (await client.get(f"{LICENCES}/not-a-uuid", headers=admin_headers)).status_code == 422
    missing = await client.get(
        f"{LICENCES}/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=admin_headers
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    bad_cursor = await client.get(LICENCES, params={"cursor": "garbage"}, headers=admin_headers)
    assert bad_cursor.status_code == 422
    too_many = await client.get(LICENCES, params={"limit": 1000}, headers=admin_headers)
    assert too_many.status_code == 422


@pytest.mark.parametrize(
    "key",
    [
        "ABCD-EFGH",  # 8 characters: the old minimum, guessable
        "abcd-efgh-jkmn-pqr",  # 15 once dashes are ignored
        "ABCD EFGH - JKMN - PQR",  # spaces do not count either
        "AAAA-AAAA-AAAA-AAAA",  # 16, but one character over and over
        "1212-1212-1212-1212-1212",
    ],
)
async def test_weak_custom_keys_are_refused_with_a_clear_problem(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: FastAPI, key: str
) -> None:
    response = await client.post(
        LICENCES, json={"product": "mail", "key": key}, headers=admin_headers
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "at least 16 characters" in response.json()["detail"]
    assert key not in response.text
    assert await count_licences(app) == 0


async def test_a_strong_custom_key_and_a_generated_key_are_taken(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    custom = await create(client, admin_headers, key="abcd-efgh-jkmn-pqrs")
    generated = await create(client, admin_headers)

    assert custom["key"] == "abcd-efgh-jkmn-pqrs"
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}", generated["key"])


async def test_a_licence_past_its_expiry_is_shown_and_filtered_as_expired(
    client: httpx.AsyncClient, admin_headers: dict[str, str], clock: FrozenClock
) -> None:
    tomorrow = (clock.now() + dt.timedelta(days=1)).isoformat()
    ending = await create(client, admin_headers, expires_at=tomorrow)
    lasting = await create(client, admin_headers)
    suspended = await create(client, admin_headers, expires_at=tomorrow)
    await client.patch(
        f"{LICENCES}/{suspended['id']}", json={"status": "suspended"}, headers=admin_headers
    )

    async def statuses(**params: str) -> dict[str, str]:
        page = await client.get(LICENCES, params=params, headers=admin_headers)
        assert page.status_code == 200
        return {item["id"]: item["status"] for item in page.json()["items"]}

    assert (await statuses())[ending["id"]] == "active"
    clock.advance(days=2)

    assert await statuses() == {
        ending["id"]: "expired",
        lasting["id"]: "active",
        suspended["id"]: "suspended",
    }
    assert await statuses(status="expired") == {ending["id"]: "expired"}
    assert await statuses(status="active") == {lasting["id"]: "active"}
    assert await statuses(status="suspended") == {suspended["id"]: "suspended"}
    detail = await client.get(f"{LICENCES}/{ending['id']}", headers=admin_headers)
    assert detail.json()["status"] == "expired"

    renewed = await client.patch(
        f"{LICENCES}/{ending['id']}",
        json={"expires_at": (clock.now() + dt.timedelta(days=365)).isoformat()},
        headers=admin_headers,
    )
    assert renewed.json()["status"] == "active"
    assert await statuses(status="expired") == {}


async def audit_entries(app: FastAPI, action: str) -> list[AuditEntry]:
    async with app_parts.database(app).sessions() as session:
        found = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(found)


async def test_a_licence_is_found_by_its_full_key_sent_in_the_body(
    client: httpx.AsyncClient, app: FastAPI, admin_headers: dict[str, str]
) -> None:
    created = await create(client, admin_headers, key="FIND-ME-BY-KEY-ABCD-9876")
    await create(client, admin_headers)
    reader = await staff_headers(app, auth.Scope.LICENCES_READ, name="support-anna")

    found = await client.post(
        f"{LICENCES}/lookup", json={"key": "find me by key abcd 9876"}, headers=reader
    )

    assert found.status_code == 200, found.text
    assert found.json()["id"] == created["id"]
    assert found.json()["status"] == "active" and found.json()["machines"] == []
    assert "key" not in found.json()
    [entry] = await audit_entries(app, "licence.lookup")
    assert (entry.actor, entry.target_id) == ("support-anna", created["id"])
    assert "9876" not in str(entry.detail)


async def test_a_key_lookup_miss_is_a_404_and_is_audited(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    reader = await staff_headers(app, auth.Scope.LICENCES_READ, name="support-anna")

    missing = await client.post(
        f"{LICENCES}/lookup", json={"key": "NO-SUCH-KEY-ABCD-EFGH"}, headers=reader
    )

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "NO-SUCH" not in missing.text
    [entry] = await audit_entries(app, "licence.lookup")
    assert entry.actor == "support-anna" and entry.detail == {"found": False}


async def test_the_key_lookup_is_guarded_and_validated(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    url = f"{LICENCES}/lookup"
    body = {"key": "SOME-KEY-ABCD-EFGH"}
    reports_only = await staff_headers(app, auth.Scope.REPORTS_READ)
    reader = await staff_headers(app, auth.Scope.LICENCES_READ)
    assert (await client.post(url, json=body)).status_code == 401
    assert (await client.post(url, json=body, headers=reports_only)).status_code == 403
    for bad in ({}, {"key": "short"}, {"key": "tab\tinside-key"}, {**body, "product": "mail"}):
        refused = await client.post(url, json=bad, headers=reader)
        assert refused.status_code == 422, bad
        assert "inside-key" not in refused.text
    assert (await client.get(url, headers=reader)).status_code in (404, 405, 422)
    assert await audit_entries(app, "licence.lookup") == []
