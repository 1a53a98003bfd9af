"""Who may publish releases and signature sets through the staff API."""

from typing import Annotated

from app.core.auth.dependencies import staff_with
from app.core.auth.models import Scope
from app.core.auth.service import Staff

ReleasesWriter = Annotated[Staff, staff_with(Scope.RELEASES_WRITE)]
