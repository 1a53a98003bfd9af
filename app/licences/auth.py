"""Who may read and change licences through the staff API."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

LicencesReader = Annotated[Staff, staff_with(Scope.LICENCES_READ)]
LicencesWriter = Annotated[Staff, staff_with(Scope.LICENCES_WRITE)]
