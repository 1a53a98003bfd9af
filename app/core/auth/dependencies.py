"""The one authenticator: who the staff member is (bearer token for the API, session
cookie for the pages) and whether they hold the scope a route needs.

No postponed annotations here: the checks' signatures name closure variables, which
FastAPI must see evaluated."""

import enum
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.auth import service
from app.core.auth.browser import SessionCookie, form_dependency, session_dependency
from app.core.auth.models import Scope
from app.core.auth.service import Staff
from app.core.deps import DatabaseDep, Now
from app.core.errors import Forbidden, Unauthenticated

# The staff page's cookie goes to the pages under /staff and nowhere else.
STAFF_PAGES_PATH = "/staff"
STAFF_COOKIE = SessionCookie("callhome_staff", STAFF_PAGES_PATH)


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


def _page_csrf_token(staff: Staff) -> str:
    # Staff resumed from a session cookie always carry their page session.
    assert staff.page_session is not None
    return staff.page_session.csrf_token


_page_staff = session_dependency(STAFF_COOKIE, service.resume_session)
_form_staff = form_dependency(_page_staff, _page_csrf_token)

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
