"""Who may export (read) and erase a licence's data through the staff API."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

PrivacyReader = Annotated[Staff, staff_with(Scope.LICENCES_READ)]
PrivacyWriter = Annotated[Staff, staff_with(Scope.PRIVACY_WRITE)]
