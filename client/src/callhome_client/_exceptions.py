"""The exceptions of the callhome client, one per kind of failure."""

from __future__ import annotations


class CallhomeError(Exception):
    """Base class of every error the callhome client raises."""


class ConfigurationError(CallhomeError, ValueError):
    """An argument given to the client is outside what the wire contract allows."""


class ComputerIdUnavailable(CallhomeError):
    """No hardware facts could be read; the product must supply its own computer ID."""


class UntrustedAnswer(CallhomeError):
    """The server's answer was refused: it cannot be trusted as a verdict."""


class SignatureError(UntrustedAnswer):
    """The answer is unsigned or its Ed25519 signature does not verify."""


class UnknownKeyError(SignatureError):
    """The answer is signed with a key that is not among the pinned public keys."""


class AnswerMismatchError(UntrustedAnswer):
    """The answer carries another nonce or request digest: it answers another request."""


class StaleAnswerError(UntrustedAnswer):
    """The answer is not fresh: its time is too far from this machine's, or it is expired
    or older than one already trusted."""


class ClockSkewError(StaleAnswerError):
    """The answer's server_time is further from this machine's clock than the accepted skew."""


class ClockBehindError(StaleAnswerError):
    """The clock is behind the latest time this machine has seen (the server's, or its own
    clock's at an offline check): set back, so the kept verdict is not trusted offline
    until the clock is right again or the server answers."""


class NoCachedVerdict(UntrustedAnswer):
    """No verdict is kept to fall back on."""


class ExpiredAnswerError(StaleAnswerError):
    """The signed document's expires_at has passed (by the skew-corrected clock)."""


class RollbackError(StaleAnswerError):
    """The signed document was issued before one of its kind already trusted: a replay."""


class WrongMachineError(UntrustedAnswer):
    """The offline licence file was issued to another machine (a copied file)."""


class MalformedAnswerError(UntrustedAnswer):
    """The signed answer is not the JSON document the wire contract describes."""


class DownloadMismatchError(UntrustedAnswer):
    """The downloaded bytes are not the size or SHA-256 offered: they were thrown away."""


class RequestRejected(CallhomeError):
    """The server refused the request itself (a 4xx other than 408 and 429): fix the caller."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"the server rejected the ping with {status_code}: {detail}")
        self.status_code = status_code


class ServerUnavailable(CallhomeError):
    """The server could not be reached, refused to answer, or failed."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoTrustedVerdict(ServerUnavailable):
    """The server is unavailable and no cached verdict's lease is still running."""
