"""The callhome client SDK: signed licence verdicts, with offline grace while the server is down."""

from ._client import AsyncClient, Client
from ._computer_id import (
    HardwareFacts,
    NetworkInterface,
    gather_hardware_facts,
    hardware_computer_id,
    persistent_computer_id,
)
from ._constants import __version__
from ._exceptions import (
    AnswerMismatchError,
    CallhomeError,
    ClockBehindError,
    ClockSkewError,
    ComputerIdUnavailable,
    ConfigurationError,
    DownloadMismatchError,
    ExpiredAnswerError,
    MalformedAnswerError,
    NoTrustedVerdict,
    RequestRejected,
    RollbackError,
    ServerUnavailable,
    SignatureError,
    StaleAnswerError,
    UnknownKeyError,
    UntrustedAnswer,
    WrongMachineError,
)
from ._models import ChainStep, Deactivation, Delta, Seats, SignatureSet, Update, Verdict
from ._news import FeedNews, UpdateNews
from ._offline import OfflineLicence, offline_request, read_offline_licence
from ._scheduler import AsyncCheckInLoop, CheckInLoop, CheckInRhythm
from ._signing import key_id

__all__ = [
    "AnswerMismatchError",
    "AsyncCheckInLoop",
    "AsyncClient",
    "CallhomeError",
    "ChainStep",
    "CheckInLoop",
    "CheckInRhythm",
    "Client",
    "ClockBehindError",
    "ClockSkewError",
    "ComputerIdUnavailable",
    "ConfigurationError",
    "Deactivation",
    "Delta",
    "DownloadMismatchError",
    "ExpiredAnswerError",
    "FeedNews",
    "HardwareFacts",
    "MalformedAnswerError",
    "NetworkInterface",
    "NoTrustedVerdict",
    "OfflineLicence",
    "RequestRejected",
    "RollbackError",
    "Seats",
    "ServerUnavailable",
    "SignatureError",
    "SignatureSet",
    "StaleAnswerError",
    "UnknownKeyError",
    "UntrustedAnswer",
    "Update",
    "UpdateNews",
    "Verdict",
    "WrongMachineError",
    "__version__",
    "gather_hardware_facts",
    "hardware_computer_id",
    "key_id",
    "offline_request",
    "persistent_computer_id",
    "read_offline_licence",
]
