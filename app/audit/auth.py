"""Who may read the audit log through the staff API: whoever may read licences."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

AuditReader = Annotated[Staff, staff_with(Scope.LICENCES_READ)]
