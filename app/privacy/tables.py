"""Every table of callhome in one metadata: what the privacy inventory must declare, export
and erasure walk, and migrations are compared against."""

from app.abuse.models import AbuseReport, AbuseReportEvent, AbuseSuspect
from app.core.audit import AuditEntry
from app.core.auth.models import StaffSession, StaffToken
from app.core.database import Base
from app.core.events.models import Event
from app.core.jobs.models import JobRun
from app.core.models import DayKey
from app.events.models import WebhookDelivery, WebhookEndpoint
from app.ingest.models import DailyUsage, pings
from app.licences.models import CustomerSession, Licence, LicenceChanges, LicenceKey, Machine
from app.privacy.models import ErasureRequest, PendingRewrite
from app.releases.models import FeedDelta, FeedVersion, Release

metadata = Base.metadata

__all__ = [
    "AbuseReport",
    "AbuseReportEvent",
    "AbuseSuspect",
    "AuditEntry",
    "CustomerSession",
    "DailyUsage",
    "DayKey",
    "ErasureRequest",
    "Event",
    "FeedDelta",
    "FeedVersion",
    "JobRun",
    "Licence",
    "LicenceChanges",
    "LicenceKey",
    "Machine",
    "PendingRewrite",
    "Release",
    "StaffSession",
    "StaffToken",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
    "pings",
]
