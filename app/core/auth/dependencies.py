"""The one authenticator: who the staff member is (bearer token for the API, session
cookie for the pages) and whether they hold the scope a route needs.

No postponed annotations here: the checks' signatures name closure variables, which
FastAPI must see evaluated."""

import enum
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.auth import service
from app.core.auth.browser import SessionCookie, check_csrf_token, check_same_origin
from app.core.auth.models import Scope
from app.core.auth.service import Staff
from app.core.deps import DatabaseDep, Now, SettingsDep
from app.core.errors import Forbidden, Unauthenticated

# The staff page's cookie goes to the pages under /staff and nowhere else.
STAFF_PAGES_PATH = "/staff"
STAFF_COOKIE = SessionCookie("callhome_staff", STAFF_PAGES_PATH)
# Form fields are bounded: nothing longer is worth reading.
CSRF_FIELD_LENGTH = 128
COOKIE_LENGTH = 64


class SignInRequired(Exception):
    """No live page session: the browser is sent to the sign-in page."""


class Via(enum.Enum):
    """How the staff member reached us, which decides what they must show."""

    API = "This needs the {scope} scope"
    PAGE = "This page needs a token with the {scope} scope"
    FORM = "This change needs a token with the {scope} scope"


_bearer = HTTPBearer(auto_error=False)


async def _api_staff(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    database: DatabaseDep,
    now: Now,
) -> Staff:
    if credentials is None:
        raise Unauthenticated()
    # The primary, never a replica: a revocation must take effect at once.
    async with database.sessions() as session:
        staff = await service.authenticate(session, credentials.credentials, now)
    if staff is None:
        raise Unauthenticated()
    return staff


async def _page_staff(
    request: Request, database: DatabaseDep, settings: SettingsDep, now: Now
) -> Staff:
    cookie_value = STAFF_COOKIE.value(request)
    if not cookie_value or len(cookie_value) > COOKIE_LENGTH:
        raise SignInRequired()
    # The primary, never a replica: a sign-out or revocation takes effect at once.
    async with database.sessions() as session, session.begin():
        staff = await service.resume_session(session, cookie_value, settings, now)
    if staff is None:
        raise SignInRequired()
    return staff


async def _form_staff(
    request: Request,
    staff: Annotated[Staff, Depends(_page_staff)],
    settings: SettingsDep,
    csrf_token: Annotated[str | None, Form(max_length=CSRF_FIELD_LENGTH)] = None,
) -> Staff:
    """A form this very page sent: same origin, carrying the session's CSRF token."""
    check_same_origin(request, settings)
    assert staff.page_session is not None
    check_csrf_token(staff.page_session.csrf_token, csrf_token)
    return staff


_IDENTIFY = {Via.API: _api_staff, Via.PAGE: _page_staff, Via.FORM: _form_staff}


def staff_with(scope: Scope | None, via: Via = Via.API) -> Any:
    """A dependency admitting staff who reach us `via` and hold `scope` (any staff if None).
    The scope is checked by the server for every route, whatever a page showed."""
    identify = _IDENTIFY[via]

    async def authorize(staff: Annotated[Staff, Depends(identify)]) -> Staff:
        if scope is not None and not staff.may(scope):
            raise Forbidden(via.value.format(scope=scope.value))
        return staff

    return Depends(authorize)
