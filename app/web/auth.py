"""Who may see and use each staff page: the API's scopes, checked by the one authenticator
through the session cookie (and, for forms, the same origin and the CSRF token)."""

from typing import Annotated

from app.core.auth.dependencies import Via, staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

SignedIn = Annotated[Staff, staff_with(None, Via.PAGE)]
SignedInForm = Annotated[Staff, staff_with(None, Via.FORM)]
ReportsPage = Annotated[Staff, staff_with(Scope.REPORTS_READ, Via.PAGE)]
ReportsForm = Annotated[Staff, staff_with(Scope.REPORTS_WRITE, Via.FORM)]
LicencesPage = Annotated[Staff, staff_with(Scope.LICENCES_READ, Via.PAGE)]
LicencesForm = Annotated[Staff, staff_with(Scope.LICENCES_WRITE, Via.FORM)]
# The staff API lists releases with releases:write; the page asks no less.
ReleasesPage = Annotated[Staff, staff_with(Scope.RELEASES_WRITE, Via.PAGE)]
# The staff API manages webhooks with webhooks:write; the delivery log asks no less.
WebhooksPage = Annotated[Staff, staff_with(Scope.WEBHOOKS_WRITE, Via.PAGE)]
