"""Who may read and act on abuse reports through the staff API."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

ReportsReader = Annotated[Staff, staff_with(Scope.REPORTS_READ)]
ReportsWriter = Annotated[Staff, staff_with(Scope.REPORTS_WRITE)]
