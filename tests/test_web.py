"""The staff web page without a browser: sessions, CSRF, scopes, bad input, on both stores."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import re
import tomllib
import uuid
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select

from app.abuse.models import AbuseReport, ReportKind
from app.core import auth
from app.core.audit import AuditEntry
from app.core.auth.models import StaffSession
from app.events.models import WebhookEndpoint
from app.events.signing import EndpointSecrets
from app.licences.models import Machine
from app.main import create_app
from tests.support import app_parts
from tests.support.abuse import make_report
from tests.support.clocks import FrozenClock
from tests.support.forms import csrf_token, set_cookie_attributes
from tests.support.licences import create_licence
from tests.support.pings import ping
from tests.support.receiver import Receiver
from tests.support.stores import Store
from tests.support.tokens import issue_token, staff_headers
from tests.support.webhooks import add_endpoint, client_of, hand_turned_worker, webhook_settings

ORIGIN = "https://callhome.test"
EVERY_PAGE_SCOPE = (
    auth.Scope.REPORTS_READ,
    auth.Scope.REPORTS_WRITE,
    auth.Scope.LICENCES_READ,
    auth.Scope.LICENCES_WRITE,
    auth.Scope.RELEASES_WRITE,
    auth.Scope.WEBHOOKS_WRITE,
)
READ_ONLY = (auth.Scope.REPORTS_READ, auth.Scope.LICENCES_READ)


def browser(app: FastAPI, *, address: str = "203.0.113.7", base_url: str = ORIGIN) -> Any:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def page(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser over HTTPS, not yet signed in."""
    async with browser(app) as http:
        yield http


async def sign_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/staff/sign-in", data={"token": token}, headers={"Origin": ORIGIN})


async def signed_in(http: httpx.AsyncClient, app: FastAPI, *scopes: auth.Scope) -> str:
    """Sign `http` in with a new token of `scopes`; returns the token."""
    token = await issue_token(app, *scopes, name="sam")
    response = await sign_in(http, token)
    assert response.status_code == 303, response.text
    return token


async def post_form(
    http: httpx.AsyncClient, path: str, data: dict[str, str], *, from_page: str
) -> httpx.Response:
    """Post a form the way a browser would from `from_page`: its CSRF token, our Origin."""
    token = csrf_token((await http.get(from_page)).text)
    return await http.post(path, data={**data, "csrf_token": token}, headers={"Origin": ORIGIN})


async def report_about(app: FastAPI, client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    licence = await create_licence(client, app, max_machines=1)
    report = await make_report(app, licence["id"], ReportKind.MACHINES_OVER_LIMIT, figure=3)
    return licence, str(report.id)


async def report_status(app: FastAPI, report_id: str) -> str:
    async with app_parts.database(app).sessions() as session:
        report = await session.scalar(
            select(AbuseReport).where(AbuseReport.id == uuid.UUID(report_id))
        )
    assert report is not None
    return report.status


async def session_rows(app: FastAPI) -> list[StaffSession]:
    async with app_parts.database(app).sessions() as session:
        return list(await session.scalars(select(StaffSession)))


# -- signing in -----------------------------------------------------------------------


async def test_sign_in_opens_a_session_kept_only_as_a_hash(
    page: httpx.AsyncClient, app: FastAPI
) -> None:
    form = await page.get("/staff/sign-in")
    assert form.status_code == 200
    assert 'type="password"' in form.text and '<label for="token">' in form.text
    token = await issue_token(app, *READ_ONLY, name="sam")
    response = await sign_in(page, token)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/"
    attributes = set_cookie_attributes(response)
    assert attributes["path"] == "/staff"
    assert attributes["samesite"].lower() == "strict"
    assert "httponly" in attributes and "secure" in attributes
    cookie = SimpleCookie(response.headers["set-cookie"])["callhome_staff"].value
    (row,) = await session_rows(app)
    assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in {row.id_hash, row.csrf_secret}
    home = await page.get("/staff/")
    assert (home.status_code, home.headers["location"]) == (303, "/staff/reports")
    queue = await page.get("/staff/reports")
    assert queue.status_code == 200 and "Signed in as <strong>sam</strong>" in queue.text
    async with app_parts.database(app).sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert "staff.sign_in" in actions


async def test_plain_http_works_on_this_machine_only(app: FastAPI) -> None:
    token = await issue_token(app, *READ_ONLY)
    async with browser(app, address="127.0.0.1", base_url="http://127.0.0.1:8000") as local:
        response = await local.post(
            "/staff/sign-in", data={"token": token}, headers={"Origin": "http://127.0.0.1:8000"}
        )
        assert response.status_code == 303
        assert "secure" not in set_cookie_attributes(response)
        assert (await local.get("/staff/reports")).status_code == 200
    async with browser(app, base_url="http://callhome.test") as remote:
        refused = await remote.post(
            "/staff/sign-in", data={"token": token}, headers={"Origin": "http://callhome.test"}
        )
        assert refused.status_code == 403
        assert "HTTPS" in refused.text
        assert "set-cookie" not in refused.headers


async def test_https_behind_a_trusted_proxy_gets_a_secure_cookie(store: Store) -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    settings = store.settings.model_copy(update={"trusted_proxies": proxies})
    application = create_app(settings, clock=FrozenClock())
    async with application.router.lifespan_context(application):
        token = await issue_token(application, *READ_ONLY)
        async with browser(
            application, address="10.1.2.3", base_url="http://callhome.test"
        ) as http:
            response = await http.post(
                "/staff/sign-in",
                data={"token": token},
                headers={"Origin": "https://callhome.test", "X-Forwarded-Proto": "https"},
            )
    assert response.status_code == 303
    assert "secure" in set_cookie_attributes(response)


async def test_a_refused_sign_in_never_tells_why(
    page: httpx.AsyncClient, app: FastAPI, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    now = app_parts.clock(app).now()
    async with app_parts.database(app).sessions() as session, session.begin():
        revoked = await auth.create_token(session, name="r", scopes=list(READ_ONLY), now=now)
        await auth.revoke_token(session, revoked.token.id, now)
        expired = await auth.create_token(
            session, name="e", scopes=list(READ_ONLY), now=now, expires_at=now
        )
    unknown = auth.TOKEN_PREFIX + "x" * 43
    answers = []
    with caplog.at_level(logging.INFO):
        for token in (unknown, revoked.secret, expired.secret, "not-a-token", ""):
            response = await sign_in(page, token)
            assert response.status_code == 401
            assert "set-cookie" not in response.headers
            answers.append(response.text)
    assert len(set(answers)) == 1
    assert "That token was not accepted" in answers[0]
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert "staff sign-in refused" in logged
    for secret in (unknown, revoked.secret, expired.secret):
        assert secret not in logged
    assert await session_rows(app) == []


async def test_sign_in_from_another_site_is_refused(page: httpx.AsyncClient, app: FastAPI) -> None:
    token = await issue_token(app, *READ_ONLY)
    response = await page.post(
        "/staff/sign-in", data={"token": token}, headers={"Origin": "https://evil.test"}
    )
    assert response.status_code == 403
    assert await session_rows(app) == []


async def test_pages_send_the_browser_to_sign_in_first(page: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    for path in (
        "/staff/",
        "/staff/reports",
        "/staff/licences",
        "/staff/releases",
        "/staff/webhooks",
        f"/staff/webhooks/{unknown}",
    ):
        response = await page.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/staff/sign-in")
    page.cookies.set("callhome_staff", "forged-value", domain="callhome.test", path="/staff")
    assert (await page.get("/staff/reports")).headers["location"] == "/staff/sign-in"


# -- sessions ending --------------------------------------------------------------------


async def test_sign_out_ends_the_session_for_good(page: httpx.AsyncClient, app: FastAPI) -> None:
    await signed_in(page, app, *READ_ONLY)
    cookie = page.cookies["callhome_staff"]
    response = await post_form(page, "/staff/sign-out", {}, from_page="/staff/reports")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/sign-in?signed-out=true"
    assert await session_rows(app) == []
    assert "signed out" in (await page.get(response.headers["location"])).text
    page.cookies.set("callhome_staff", cookie, domain="callhome.test", path="/staff")
    again = await page.get("/staff/reports")
    assert (again.status_code, again.headers["location"]) == (303, "/staff/sign-in")


async def test_a_revoked_expired_or_deleted_token_ends_its_sessions(
    page: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    now = clock.now()
    async with app_parts.database(app).sessions() as session, session.begin():
        revoked = await auth.create_token(session, name="r", scopes=list(READ_ONLY), now=now)
        expiring = await auth.create_token(
            session,
            name="e",
            scopes=list(READ_ONLY),
            now=now,
            expires_at=now + dt.timedelta(minutes=5),
        )
        deleted = await auth.create_token(session, name="d", scopes=list(READ_ONLY), now=now)
    for issued in (revoked, expiring, deleted):
        page.cookies.clear()
        assert (await sign_in(page, issued.secret)).status_code == 303
        assert (await page.get("/staff/reports")).status_code == 200
        async with app_parts.database(app).sessions() as session, session.begin():
            if issued is revoked:
                await auth.revoke_token(session, issued.token.id, clock.now())
            elif issued is deleted:
                await session.execute(
                    delete(auth.StaffToken).where(auth.StaffToken.id == issued.token.id)
                )
        if issued is expiring:
            clock.advance(minutes=6)
        response = await page.get("/staff/reports")
        assert (response.status_code, response.headers["location"]) == (303, "/staff/sign-in")
    assert await session_rows(app) == []


async def test_sessions_end_when_idle_and_at_their_lifetime(
    page: httpx.AsyncClient, app: FastAPI, clock: FrozenClock
) -> None:
    settings = app_parts.settings(app)
    await signed_in(page, app, *READ_ONLY)
    clock.advance(seconds=settings.staff_session_idle_s - 1)
    assert (await page.get("/staff/reports")).status_code == 200
    clock.advance(seconds=settings.staff_session_idle_s)
    assert (await page.get("/staff/reports")).status_code == 303
    page.cookies.clear()
    await signed_in(page, app, *READ_ONLY)
    # Used all along, it still ends at its lifetime.
    step = settings.staff_session_idle_s // 2
    for _ in range(settings.staff_session_lifetime_s // step - 1):
        clock.advance(seconds=step)
        assert (await page.get("/staff/reports")).status_code == 200
    clock.advance(seconds=step)
    assert (await page.get("/staff/reports")).status_code == 303


# -- CSRF and scopes -------------------------------------------------------------------


async def test_a_form_without_its_csrf_token_or_from_elsewhere_fails(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, report_id = await report_about(app, client)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    path = f"/staff/reports/{report_id}"
    token = csrf_token((await page.get(path)).text)
    change = {"status": "acknowledged", "note": "looking"}
    attempts = [
        ({**change}, {"Origin": ORIGIN}),
        ({**change, "csrf_token": "wrong"}, {"Origin": ORIGIN}),
        ({**change, "csrf_token": token}, {"Origin": "https://evil.test"}),
        ({**change, "csrf_token": token}, {}),
        ({**change, "csrf_token": token}, {"Referer": "https://evil.test/staff/reports"}),
    ]
    for data, headers in attempts:
        response = await page.post(path, data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
        assert "text/html" in response.headers["content-type"]
        assert '<p class="notice error" role="alert">' in response.text
    assert await report_status(app, report_id) == "open"
    # A browser that sends no Origin but our own Referer is believed.
    accepted = await page.post(
        path, data={**change, "csrf_token": token}, headers={"Referer": ORIGIN + path}
    )
    assert accepted.status_code == 303
    assert await report_status(app, report_id) == "acknowledged"


async def test_a_read_only_token_sees_no_forms_and_cannot_change_anything(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    licence, report_id = await report_about(app, client)
    await ping(app, licence["key"], "pc-1")
    await signed_in(page, app, *READ_ONLY)
    report = await page.get(f"/staff/reports/{report_id}")
    assert report.status_code == 200
    assert 'name="note"' not in report.text
    licence_page = await page.get(f"/staff/licences/{licence['id']}")
    assert licence_page.status_code == 200
    assert "Retire" not in licence_page.text
    machine_id = re.search(r"<code>([0-9a-f]{12})</code>", licence_page.text)
    assert machine_id is not None
    # Forged posts carry the session's real CSRF token (from the sign-out form).
    forged = [
        (f"/staff/reports/{report_id}", {"status": "dismissed", "note": "no"}),
        (f"/staff/licences/{licence['id']}/machines/{machine_id.group(1)}/retire", {}),
    ]
    for path, data in forged:
        response = await post_form(page, path, data, from_page="/staff/reports")
        assert response.status_code == 403, path
        assert "scope" in response.text
    assert await report_status(app, report_id) == "open"
    async with app_parts.database(app).sessions() as session:
        machine = await session.scalar(select(Machine))
    assert machine is not None and machine.retired_at is None
    assert (await page.get("/staff/releases")).status_code == 403


async def test_pages_need_their_scope(page: httpx.AsyncClient, app: FastAPI) -> None:
    await signed_in(page, app, auth.Scope.LICENCES_READ)
    assert (await page.get("/staff/")).headers["location"] == "/staff/licences"
    denied = await page.get("/staff/reports")
    assert denied.status_code == 403
    assert "reports:read" in denied.text
    assert 'href="/staff/reports"' not in (await page.get("/staff/licences")).text
    page.cookies.clear()
    await signed_in(page, app, auth.Scope.PRIVACY_WRITE)
    assert (await page.get("/staff/")).status_code == 403


# -- the queue, a report, a licence, releases ---------------------------------------------


async def queue_kinds(page: httpx.AsyncClient, **filters: str) -> list[str]:
    """The kinds of the reports the queue lists, in its order."""
    html = (await page.get("/staff/reports", params=filters)).text
    return re.findall(r'<th scope="row"><a href="/staff/reports/[^"]+">([a-z ]+)</a>', html)


async def test_the_queue_filters_sorts_pages_and_exports(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await create_licence(client, app, max_machines=2)
    second = await create_licence(client, app, product="gate", max_machines=2)
    await make_report(app, first["id"], ReportKind.MACHINES_OVER_LIMIT, figure=9, allowed=2)
    clock.advance(days=2)
    await make_report(app, second["id"], ReportKind.USERS_OVER_LIMIT, figure=3, allowed=2)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    # The older report is the more severe one.
    assert await queue_kinds(page) == ["machines over limit", "users over limit"]
    assert await queue_kinds(page, sort="last_seen") == ["users over limit", "machines over limit"]
    assert await queue_kinds(page, product="mail", status="") == ["machines over limit"]
    since = clock.now().date().isoformat()
    assert await queue_kinds(page, since=since, kind="") == ["users over limit"]
    assert await queue_kinds(page, kind="users_over_limit") == ["users over limit"]
    none_resolved = (await page.get("/staff/reports", params={"status": "resolved"})).text
    assert "No report matches these filters" in none_resolved
    page_one = await page.get("/staff/reports", params={"status": "open"})
    assert page_one.status_code == 200
    export = await page.get("/staff/reports/export", params={"product": "gate", "sort": "severity"})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert lines[0].startswith("id,licence_id,product") and len(lines) == 2
    assert second["id"] in lines[1]


async def test_the_queue_pages_by_cursor(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    from app.web import router as web_router

    licences = [await create_licence(client, app) for _ in range(3)]
    for number, licence in enumerate(licences):
        await make_report(app, licence["id"], ReportKind.MACHINES_OVER_LIMIT, figure=2 + number)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    seen: list[str] = []
    original = web_router.REPORTS_PER_PAGE
    web_router.REPORTS_PER_PAGE = 2
    try:
        url: str | None = "/staff/reports?status=open"
        while url:
            html = (await page.get(url)).text
            seen += re.findall(r'href="/staff/reports/([0-9a-f-]{36})"', html)
            found = re.search(r'href="([^"]+)" rel="next"', html)
            url = found.group(1).replace("&amp;", "&") if found else None
            if url:
                assert "status=open" in url and "cursor=" in url
    finally:
        web_router.REPORTS_PER_PAGE = original
    assert len(seen) == 3 == len(set(seen))


async def test_acknowledge_then_resolve_a_report_with_notes(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    licence, report_id = await report_about(app, client)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    path = f"/staff/reports/{report_id}"
    shown = await page.get(path)
    assert f'href="/staff/licences/{licence["id"]}"' in shown.text
    options = re.findall(r'<option value="(\w+)">', shown.text)
    assert options == ["acknowledged", "resolved", "dismissed"]
    done = await post_form(
        page,
        path,
        {"status": "acknowledged", "note": "Asked the customer <b>why</b>"},
        from_page=path,
    )
    assert (done.status_code, done.headers["location"]) == (303, f"{path}?done=acknowledged")
    after = (await page.get(done.headers["location"])).text
    assert "Report acknowledged." in after
    assert "Asked the customer &lt;b&gt;why&lt;/b&gt;" in after
    assert "open → acknowledged" in after
    note_only = await post_form(page, path, {"status": "", "note": "Still waiting"}, from_page=path)
    assert note_only.headers["location"] == f"{path}?done=note"
    resolved = await post_form(page, path, {"status": "resolved", "note": "Paid"}, from_page=path)
    assert resolved.status_code == 303
    assert await report_status(app, report_id) == "resolved"
    closed = (await page.get(path)).text
    assert "Add a note" in closed and '<select id="new-status"' not in closed


async def test_the_licence_page_shows_seats_machines_and_the_chart_and_retires(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    licence = await create_licence(client, app, max_machines=1, max_users=20)
    await ping(app, licence["key"], "pc-1", user_count=12, version="8.0.0")
    clock.advance(days=1)
    await ping(app, licence["key"], "pc-1", user_count=25)
    await ping(app, licence["key"], "pc-2", user_count=3)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    path = f"/staff/licences/{licence['id']}"
    html = (await page.get(path)).text
    assert "Machines (2)" in html
    assert '<span class="status status-valid">valid</span>' in html
    assert re.search(r"<dd[^>]*>2 of 1</dd>", html)
    assert re.search(r"<dd[^>]*>25 of 20</dd>", html)
    assert html.count('<figure class="chart"') == 3
    assert html.count('<rect class="bar"') == 3 * 30
    # Yesterday: one ping; today: two, from two machines.
    today = clock.now().date()
    yesterday = today - dt.timedelta(days=1)
    assert f"<title>{yesterday}: 1</title>" in html
    assert f"<title>{today}: 2</title>" in html
    assert html.count('<line class="limit"') == 2
    machine_ids = re.findall(r"<code>([0-9a-f]{12})</code>", html)
    assert len(machine_ids) == 2
    retired = await post_form(page, f"{path}/machines/{machine_ids[0]}/retire", {}, from_page=path)
    assert (retired.status_code, retired.headers["location"]) == (
        303,
        f"{path}?retired={machine_ids[0]}",
    )
    after = (await page.get(retired.headers["location"])).text
    assert f"Machine <code>{machine_ids[0]}</code> retired" in after
    assert "retired " in after and after.count("Retire</button>") == 1
    ninety = await page.get(path, params={"days": 90})
    assert ninety.text.count('<rect class="bar"') == 3 * 90


async def test_licences_are_found_by_key_ending_or_id(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    wanted = await create_licence(client, app, key="ABCD-EFGH-JKMN-WXYZ")
    await create_licence(client, app, key="ABCD-EFGH-JKMN-QRST")
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    listing = (await page.get("/staff/licences")).text
    assert listing.count("Key ending") == 2
    by_key = (await page.get("/staff/licences", params={"search": "wxyz"})).text
    assert "Key ending WXYZ" in by_key and "QRST" not in by_key
    by_id = await page.get("/staff/licences", params={"search": wanted["id"]})
    assert by_id.headers["location"] == f"/staff/licences/{wanted['id']}"


async def test_the_licences_page_shows_and_filters_expired_licences(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tomorrow = (clock.now() + dt.timedelta(days=1)).isoformat()
    await create_licence(client, app, key="ENDS-SOON-ABCD-WXYZ", expires_at=tomorrow)
    await create_licence(client, app, key="GOES-ON-ABCD-EFGH-QRST")
    clock.advance(days=2)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)

    listing = (await page.get("/staff/licences")).text
    assert re.search(r"WXYZ</a></th>\s*<td>mail</td>\s*<td>expired</td>", listing)
    assert re.search(r"QRST</a></th>\s*<td>mail</td>\s*<td>active</td>", listing)
    assert '<option value="expired"' in listing
    expired = (await page.get("/staff/licences", params={"status": "expired"})).text
    assert "Key ending WXYZ" in expired and "QRST" not in expired
    active = (await page.get("/staff/licences", params={"status": "active"})).text
    assert "Key ending QRST" in active and "WXYZ" not in active


async def test_the_releases_page_shows_rollouts(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await staff_headers(app, auth.Scope.RELEASES_WRITE)
    for version, percent in (("8.1.0", 100), ("8.2.0", 25)):
        published = await client.post(
            "/v1/admin/releases",
            json={
                "product": "mail",
                "version": version,
                "url": f"https://downloads.example/mail-{version}.tar.gz",
                "sha256": "0" * 64,
                "size": 1000,
                "rollout_percent": percent,
            },
            headers=headers,
        )
        assert published.status_code == 201, published.text
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    html = (await page.get("/staff/releases")).text
    assert "mail, stable" in html
    assert html.index("8.2.0") < html.index("8.1.0")
    assert "25%" in html and "rolling out" in html
    assert "No signature set has been published" in html


async def test_the_webhooks_page_shows_the_delivery_log_and_tells_of_a_disabled_endpoint(
    store: Store, clock: FrozenClock, receiver: Receiver
) -> None:
    application = create_app(webhook_settings(store, webhook_retry_hours=1.0), clock=clock)
    # The test alone turns the worker: the lifespan's own round, taken as it starts, could
    # land after the licence was made (delivering its event before the receiver starts
    # failing) or beside the test's own rounds on the same worker.
    async with application.router.lifespan_context(application), hand_turned_worker(application):
        async with client_of(application) as api:
            failing = await add_endpoint(
                api,
                application,
                receiver.url + "&token=<script>alert(1)</script>",
                ["licence.created", "report.opened"],
                ordered=True,
            )
            await create_licence(api, application, external_ref="CRM-body-never-shown")
            receiver.status = 500
            worker = app_parts.webhooks(application)
            for _ in range(12):
                await worker.run_once()
                clock.advance(minutes=10)
        async with browser(application) as page:
            await signed_in(page, application, auth.Scope.WEBHOOKS_WRITE)
            assert (await page.get("/staff/")).headers["location"] == "/staff/webhooks"
            listing = (await page.get("/staff/webhooks")).text
            detail = (await page.get(f"/staff/webhooks/{failing['id']}")).text
    host = f"127.0.0.1:{receiver.port}"
    assert re.search(rf'<a href="/staff/webhooks/{failing["id"]}">{re.escape(host)}</a>', listing)
    assert "licence.created, report.opened" in listing and "(in order)" in listing
    assert '<p class="notice error" role="alert">1 endpoint is disabled' in listing
    assert '<span class="status status-disabled">disabled</span>' in listing
    assert "HTTP 500 <code>http_status</code>" in listing
    assert f"<h1>Webhook to {host}</h1>" in detail
    assert "every attempt failed since" in detail
    (row,) = re.findall(r'<tr>\s*<th scope="row">licence.created</th>(.*?)</tr>', detail, re.S)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert 'status-failed">failed' in cells[1]
    assert int(cells[2]) >= 5  # attempts
    assert cells[3] == "HTTP 500 <code>http_status</code>"
    assert cells[4].endswith(" ms")
    for html in (listing, detail):
        # Only the host: the path and query may carry the receiver's token.
        assert "/hooks/callhome" not in html and "token=" not in html and "<script>" not in html
        # Never a body: neither ours nor the receiver's answer.
        assert "CRM-body-never-shown" not in html and "nono" not in html


async def test_the_webhooks_page_escapes_what_it_shows_and_pages_the_log(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A URL stored before today's rules (or by hand) is shown escaped, never as markup."""
    from app.core.events.service import record_event
    from app.events import repository as webhook_repository
    from app.web import router as web_router

    now = app_parts.clock(app).now()
    endpoint_id = uuid.uuid4()
    async with app_parts.database(app).sessions() as session, session.begin():
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                url="https://a<b>&amp.example/in",
                events=["licence.created"],
                ordered=False,
                secret_sealed=EndpointSecrets(app_parts.settings(app)).seal(endpoint_id, "x"),
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        for number in range(3):
            await record_event(session, "licence.created", {"n": number}, at=now)
        await session.flush()
        for event in await webhook_repository.unplanned_events(session, 10):
            webhook_repository.add_delivery(session, endpoint_id, event.seq, now)
            event.planned_at = now
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    listing = (await page.get("/staff/webhooks")).text
    assert "a&lt;b&gt;&amp;amp.example" in listing and "a<b>" not in listing
    assert "No webhook endpoint" not in listing and "disabled" not in listing
    seen = 0
    original = web_router.DELIVERIES_PER_PAGE
    web_router.DELIVERIES_PER_PAGE = 2
    try:
        url: str | None = f"/staff/webhooks/{endpoint_id}"
        while url:
            html = (await page.get(url)).text
            assert "a&lt;b&gt;" in html and "a<b>" not in html
            seen += html.count('<th scope="row">licence.created</th>')
            found = re.search(r'href="([^"]+)" rel="next"', html)
            url = found.group(1) if found else None
    finally:
        web_router.DELIVERIES_PER_PAGE = original
    assert seen == 3
    for cursor, status in (("garbage", 422), ("A" * 600, 422)):
        refused = await page.get(f"/staff/webhooks/{endpoint_id}", params={"cursor": cursor})
        assert refused.status_code == status
        assert '<p class="notice error" role="alert">' in refused.text


async def test_the_webhooks_page_needs_the_webhooks_scope(
    page: httpx.AsyncClient, app: FastAPI
) -> None:
    others = [scope for scope in auth.Scope if scope is not auth.Scope.WEBHOOKS_WRITE]
    await signed_in(page, app, *others)
    for path in ("/staff/webhooks", f"/staff/webhooks/{uuid.uuid4()}"):
        denied = await page.get(path)
        assert denied.status_code == 403
        assert "webhooks:write" in denied.text
    assert 'href="/staff/webhooks"' not in (await page.get("/staff/licences")).text
    page.cookies.clear()
    await signed_in(page, app, auth.Scope.WEBHOOKS_WRITE)
    empty = await page.get("/staff/webhooks")
    assert empty.status_code == 200 and "No webhook endpoint has been added" in empty.text
    assert 'href="/staff/webhooks" aria-current="page"' in empty.text
    for path, status in (
        (f"/staff/webhooks/{uuid.uuid4()}", 404),
        ("/staff/webhooks/not-an-id", 422),
        (f"/staff/webhooks/{uuid.uuid4()}?cursor=garbage", 404),
    ):
        response = await page.get(path)
        assert response.status_code == status, (path, response.text)
    assert (await page.post("/staff/webhooks")).status_code == 405


# -- bad input ----------------------------------------------------------------------------


async def test_bad_input_gets_a_clear_page_never_a_500(
    page: httpx.AsyncClient, app: FastAPI, client: httpx.AsyncClient
) -> None:
    licence, report_id = await report_about(app, client)
    await signed_in(page, app, *EVERY_PAGE_SCOPE)
    unknown = str(uuid.uuid4())
    gets = {
        f"/staff/reports/{unknown}": 404,
        "/staff/reports/not-an-id": 422,
        "/staff/reports?status=bogus": 422,
        "/staff/reports?kind=bogus": 422,
        "/staff/reports?product=NOT%20A%20PRODUCT": 422,
        "/staff/reports?since=yesterday": 422,
        "/staff/reports?sort=size": 422,
        "/staff/reports?cursor=garbage": 422,
        "/staff/reports?sort=last_seen&cursor=" + "A" * 600: 422,
        "/staff/reports/export?status=bogus": 422,
        f"/staff/reports/{report_id}?done=bogus": 422,
        f"/staff/licences/{unknown}": 404,
        "/staff/licences/12345": 422,
        f"/staff/licences/{licence['id']}?days=2": 422,
        f"/staff/licences/{licence['id']}?days=many": 422,
        f"/staff/licences/{licence['id']}?retired=<script>": 422,
        "/staff/licences?search=abc": 422,
        "/staff/licences?search=%00%00%00%00": 422,
        "/staff/reports?product=%00": 422,
        "/staff/licences?status=bogus": 422,
        "/staff/licences?cursor=garbage": 422,
        "/staff/no-such-page": 404,
        "/staff/static/no-such-file.css": 404,
    }
    for path, status in gets.items():
        response = await page.get(path)
        assert response.status_code == status, (path, response.text)
        assert "text/html" in response.headers["content-type"], path
        assert '<p class="notice error" role="alert">' in response.text, path
        assert "<script>" not in response.text
    report_path = f"/staff/reports/{report_id}"
    licence_path = f"/staff/licences/{licence['id']}"
    posts = {
        (report_path, "note="): 422,
        (report_path, "note=%20%20"): 422,
        (report_path, "status=reopened&note=x"): 422,
        (report_path, "note=" + "x" * 2001): 422,
        (f"/staff/reports/{unknown}", "note=x"): 404,
        (f"{licence_path}/machines/{'a' * 12}/retire", ""): 404,
        (f"{licence_path}/machines/NOT-HEX/retire", ""): 422,
        (f"/staff/licences/{unknown}/machines/{'a' * 12}/retire", ""): 404,
    }
    for (path, body), status in posts.items():
        token = csrf_token((await page.get(report_path)).text)
        response = await page.post(
            path,
            content=f"{body}&csrf_token={token}",
            headers={"Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == status, (path, body, response.text)
        assert '<p class="notice error" role="alert">' in response.text
    closed = await post_form(
        page, report_path, {"status": "dismissed", "note": "fine"}, from_page=report_path
    )
    assert closed.status_code == 303
    conflict = await post_form(
        page, report_path, {"status": "acknowledged", "note": "again"}, from_page=report_path
    )
    assert conflict.status_code == 409
    assert "cannot become acknowledged" in conflict.text
    assert (await page.put(report_path)).status_code == 405


# -- headers, packaging, switching off ---------------------------------------------------


async def test_pages_carry_strict_headers_and_are_never_cached(
    page: httpx.AsyncClient, app: FastAPI
) -> None:
    for response in (await page.get("/staff/sign-in"), await page.get("/staff/reports")):
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    sign_in_page = (await page.get("/staff/sign-in")).text
    assert "<script" not in sign_in_page and " style=" not in sign_in_page
    assert 'class="skip-link" href="#main"' in sign_in_page
    assert '<main id="main"' in sign_in_page
    css = await page.get("/staff/static/staff.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "max-age=3600"


def test_templates_and_assets_go_into_the_wheel() -> None:
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app"]
    web = root / "app" / "web"
    shipped = [path for path in (web / "templates").iterdir()] + list((web / "static").iterdir())
    assert shipped
    for path in shipped:
        relative = path.relative_to(root / "app")
        assert any(relative.match(pattern) for pattern in patterns), relative


async def test_the_staff_page_goes_with_the_staff_api(store: Store) -> None:
    settings = store.settings.model_copy(update={"admin_enabled": False})
    application = create_app(settings, clock=FrozenClock())
    async with application.router.lifespan_context(application), browser(application) as http:
        assert (await http.get("/staff/sign-in")).status_code == 404
        assert (await http.get("/staff/static/staff.css")).status_code == 404
