"""Who may manage webhook endpoints through the staff API."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

WebhooksWriter = Annotated[Staff, staff_with(Scope.WEBHOOKS_WRITE)]
