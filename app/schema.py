"""Every table of callhome, imported in one place for migrations and the privacy inventory."""

from app.abuse.models import AbuseReport, AbuseReportEvent, AbuseSuspect
from app.core.audit import AuditEntry
from app.core.auth import StaffToken
from app.core.database import Base
from app.core.pseudonyms import DayKey
from app.ingest.models import DailyUsage, pings
from app.licences.models import Licence, Machine
from app.releases.models import FeedDelta, FeedVersion, Release
from app.web.models import StaffSession

metadata = Base.metadata

__all__ = [
    "AbuseReport",
    "AbuseReportEvent",
    "AbuseSuspect",
    "AuditEntry",
    "DailyUsage",
    "DayKey",
    "FeedDelta",
    "FeedVersion",
    "Licence",
    "Machine",
    "Release",
    "StaffSession",
    "StaffToken",
    "metadata",
    "pings",
]
