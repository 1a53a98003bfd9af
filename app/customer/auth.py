"""Who may act on the customer's behalf through the staff API: offline files, erasure requests."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

OfflineIssuer = Annotated[Staff, staff_with(Scope.LICENCES_WRITE)]
