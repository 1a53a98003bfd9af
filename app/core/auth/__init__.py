"""Staff authentication: scoped bearer tokens for the API, browser sessions for the pages,
and the one authenticator both are checked by (`dependencies.staff_with`)."""

from app.core.auth.models import Scope, StaffSession, StaffToken
from app.core.auth.service import (
    TOKEN_PREFIX,
    IssuedToken,
    Staff,
    create_token,
    list_tokens,
    revoke_token,
)

__all__ = [
    "TOKEN_PREFIX",
    "IssuedToken",
    "Scope",
    "Staff",
    "StaffSession",
    "StaffToken",
    "create_token",
    "list_tokens",
    "revoke_token",
]
