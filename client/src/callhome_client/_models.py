"""The verdict: typed, immutable views of a signed answer, and their lenient parser."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ._exceptions import MalformedAnswerError
from ._time import format_rfc3339, parse_rfc3339

# The wire's days are YYYY-MM-DD alone: newer Pythons' fromisoformat also takes 20271231
# and week dates, which other readers of the wire (the C SDK among them) refuse.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


@dataclass(frozen=True)
class Seats:
    """The licence's machine seats and whether this machine holds one."""

    allowed: int
    active: int
    over_limit: bool
    seat: str
    """"granted" or "denied"."""
    this_machine: str | None = None
    """This machine's short reference (12 hex digits), the one staff see: for an About box."""
    floating: bool = False
    """Seats are leases: the client frees its seat on close so another machine may take it."""

    @property
    def granted(self) -> bool:
        return self.seat == "granted"


@dataclass(frozen=True)
class Update:
    """A newer release of the product that this install may download."""

    version: str
    url: str
    sha256: str
    size: int
    notes_url: str | None
    critical: bool


@dataclass(frozen=True)
class Delta:
    """A signature-set patch from an installed version (the wire's `from`)."""

    from_version: int
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ChainStep:
    """One file to fetch on the way to a signature set: a delta, or the full set."""

    from_version: int | None
    """The version the delta applies to; None for the full set."""
    to_version: int
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SignatureSet:
    """The newest version of one signature feed, with the chain of deltas that leads there."""

    version: int
    url: str
    sha256: str
    size: int
    delta: Delta | None
    chain: tuple[ChainStep, ...] = ()
    """The deltas to apply in order; empty when the full set is the cheaper plan."""

    @property
    def plan(self) -> tuple[ChainStep, ...]:
        """What to fetch, in order: the chain, or the full set alone."""
        if self.chain:
            return self.chain
        return (ChainStep(None, self.version, self.url, self.sha256, self.size),)


@dataclass(frozen=True)
class Verdict:
    """The server's signed verdict on the licence, fresh or from the offline cache."""

    licence_status: str
    """"valid", "expired", "revoked", "suspended" or "unknown" (newer servers may add more)."""
    expires_at: datetime | None
    max_users: int | None
    users_over_limit: bool
    seats: Seats
    update: Update | None
    signatures: Mapping[str, SignatureSet]
    next_check_in_s: int
    lease_expires_at: datetime
    server_time_at: datetime
    cached: bool = False
    """True when the server was unavailable and this is the last good verdict, still leased."""
    entitlements: frozenset[str] = frozenset()
    """The licence's paid add-ons and feeds."""
    updates_until: date | None = None
    """The end of the licence's maintenance: releases after it are not offered."""
    grace_until: datetime | None = None
    """Only after expiry, within the licence's grace period: until when the product may run."""

    @property
    def licensed(self) -> bool:
        """The licence is valid and this machine holds a seat."""
        return self.licence_status == "valid" and self.seats.granted

    @property
    def in_grace(self) -> bool:
        """Expired, but within grace and still seated: the product may keep working."""
        return (
            self.licence_status == "expired"
            and self.grace_until is not None
            and (self.seats.granted)
        )

    @property
    def may_run(self) -> bool:
        """Licensed, or in grace: whether the product runs (read-only or full is its choice)."""
        return self.licensed or self.in_grace

    @property
    def may_run_until(self) -> datetime | None:
        """The end this verdict gives to running: grace_until in grace, the expiry when
        licensed (None: no end). None too when the product may not run: see may_run."""
        if self.in_grace:
            return self.grace_until
        return self.expires_at if self.licensed else None

    def entitled(self, name: str) -> bool:
        """Whether a paid add-on may be switched on: the product may run and the licence has it."""
        return self.may_run and name in self.entitlements

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the verdict, timestamps in RFC 3339."""
        return dataclasses.asdict(self, dict_factory=json_ready)


@dataclass(frozen=True)
class Deactivation:
    """The server's signed answer to Client.deactivate()."""

    status: str
    """"deactivated" (the seat is free now), "not_seated" (it held none) or "unknown"."""
    this_machine: str | None
    issued_at: datetime
    expires_at: datetime

    @property
    def seat_free(self) -> bool:
        """This machine holds no seat now (freed by this call or an earlier one)."""
        return self.status in ("deactivated", "not_seated")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the answer, timestamps in RFC 3339."""
        return dataclasses.asdict(self, dict_factory=json_ready)


def parse_deactivation(document: object) -> Deactivation:
    answer = _Fields(document, "")
    return Deactivation(
        status=answer.text("status"),
        this_machine=answer.optional_text("this_machine"),
        issued_at=answer.timestamp("issued_at"),
        expires_at=answer.timestamp("expires_at"),
    )


def json_ready(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in pairs}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(value)
    return value


class _Fields:
    """Reads typed required fields of one JSON object, naming the field path in errors."""

    def __init__(self, document: object, path: str) -> None:
        if not isinstance(document, dict):
            raise MalformedAnswerError(f"answer field {path or '(root)'} is not an object")
        self._document: dict[str, object] = document
        self._path = path

    def _get(self, name: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
        if name not in self._document:
            raise MalformedAnswerError(f"answer field {self._path}{name} is missing")
        value = self._document[name]
        if value is None and optional:
            return None
        # bool is an int in Python, but never a valid count in JSON terms
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise MalformedAnswerError(f"answer field {self._path}{name} has the wrong type")
        return value

    def text(self, name: str) -> str:
        value: str = self._get(name, (str,))
        return value

    def optional_text(self, name: str) -> str | None:
        value: str | None = self._get(name, (str,), optional=True)
        return value

    def integer(self, name: str) -> int:
        value: int = self._get(name, (int,))
        return value

    def optional_integer(self, name: str) -> int | None:
        value: int | None = self._get(name, (int,), optional=True)
        return value

    def flag(self, name: str) -> bool:
        value: bool = self._get(name, (bool,))
        return value

    def timestamp(self, name: str) -> datetime:
        try:
            return parse_rfc3339(self.text(name))
        except ValueError:
            raise MalformedAnswerError(f"answer field {self._path}{name} is no timestamp") from None

    def optional_timestamp(self, name: str) -> datetime | None:
        return None if self._get(name, (str,), optional=True) is None else self.timestamp(name)

    # Fields newer servers send: an older server's answer, without them, still parses.

    def optional_text_if_present(self, name: str) -> str | None:
        return self.optional_text(name) if name in self._document else None

    def flag_if_present(self, name: str) -> bool:
        return self.flag(name) if name in self._document else False

    def optional_timestamp_if_present(self, name: str) -> datetime | None:
        return self.optional_timestamp(name) if name in self._document else None

    def optional_date(self, name: str) -> date | None:
        text = self.optional_text_if_present(name)
        if text is None:
            return None
        try:
            if _DATE.fullmatch(text) is None:
                raise ValueError("not YYYY-MM-DD")
            return date.fromisoformat(text)
        except ValueError:
            raise MalformedAnswerError(f"answer field {self._path}{name} is no date") from None

    def optional_names(self, name: str) -> list[str]:
        if name not in self._document:
            return []
        names = self._get(name, (list,))
        if not all(isinstance(item, str) for item in names):
            raise MalformedAnswerError(f"answer field {self._path}{name} is not a list of names")
        return list(names)

    def child(self, name: str) -> _Fields:
        return _Fields(self._get(name, (dict,)), f"{self._path}{name}.")

    def optional_child(self, name: str) -> _Fields | None:
        value = self._get(name, (dict,), optional=True)
        return None if value is None else _Fields(value, f"{self._path}{name}.")

    def optional_list(self, name: str) -> list[_Fields]:
        """The objects of a list field that newer servers send; empty when absent or null."""
        members = self._document.get(name)
        if members is None:
            return []
        if not isinstance(members, list):
            raise MalformedAnswerError(f"answer field {self._path}{name} is not a list")
        return [
            _Fields(value, f"{self._path}{name}[{index}].") for index, value in enumerate(members)
        ]

    def children(self, name: str) -> dict[str, _Fields]:
        members: dict[str, object] = self._get(name, (dict,))
        return {key: _Fields(value, f"{self._path}{name}.{key}.") for key, value in members.items()}


def parse_verdict(document: object, *, cached: bool) -> Verdict:
    """Build a Verdict from a verified answer document; extra fields are ignored."""
    answer = _Fields(document, "")
    update = answer.optional_child("update")
    return Verdict(
        **_licence_terms(answer.child("licence")),
        update=None if update is None else _parse_update(update),
        signatures={
            feed: _parse_signature_set(fields)
            for feed, fields in answer.children("signatures").items()
        },
        next_check_in_s=answer.integer("next_check_in"),
        lease_expires_at=answer.timestamp("lease_expires"),
        server_time_at=answer.timestamp("server_time"),
        cached=cached,
    )


def licence_fields(document: object) -> _Fields:
    """A verified document's fields, read as the answer's are."""
    return _Fields(document, "")


def parse_licence(
    licence: _Fields, *, issued_at: datetime, expires_at: datetime, now: datetime
) -> Verdict:
    """The verdict an offline licence file carries, as of `now`: a file runs past the
    licence's expiry only into its grace (the server caps it there), so from the expiry on
    the licence is expired and in grace until the file ends."""
    verdict = Verdict(
        **_licence_terms(licence),
        update=None,
        signatures={},
        next_check_in_s=0,
        lease_expires_at=expires_at,
        server_time_at=issued_at,
        cached=True,
    )
    if verdict.licence_status == "valid" and verdict.expires_at and now >= verdict.expires_at:
        return dataclasses.replace(verdict, licence_status="expired", grace_until=expires_at)
    return verdict


def _licence_terms(licence: _Fields) -> dict[str, Any]:
    """The Verdict fields read from a `licence` object, in an answer or a licence file."""
    return {
        "licence_status": licence.text("status"),
        "expires_at": licence.optional_timestamp("expires_at"),
        "max_users": licence.optional_integer("max_users"),
        "users_over_limit": licence.flag("users_over_limit"),
        "seats": _parse_seats(licence.child("machines")),
        "entitlements": frozenset(licence.optional_names("entitlements")),
        "updates_until": licence.optional_date("updates_until"),
        "grace_until": licence.optional_timestamp_if_present("grace_until"),
    }


def _parse_seats(machines: _Fields) -> Seats:
    return Seats(
        allowed=machines.integer("allowed"),
        active=machines.integer("active"),
        over_limit=machines.flag("over_limit"),
        seat=machines.text("seat"),
        this_machine=machines.optional_text_if_present("this_machine"),
        floating=machines.flag_if_present("floating"),
    )


def _parse_update(update: _Fields) -> Update:
    return Update(
        version=update.text("version"),
        url=update.text("url"),
        sha256=update.text("sha256"),
        size=update.integer("size"),
        notes_url=update.optional_text("notes_url"),
        critical=update.flag("critical"),
    )


def _parse_signature_set(feed: _Fields) -> SignatureSet:
    delta = feed.optional_child("delta")
    return SignatureSet(
        version=feed.integer("version"),
        url=feed.text("url"),
        sha256=feed.text("sha256"),
        size=feed.integer("size"),
        delta=None if delta is None else _parse_delta(delta),
        chain=tuple(_parse_step(step) for step in feed.optional_list("chain")),
    )


def _parse_step(step: _Fields) -> ChainStep:
    return ChainStep(
        from_version=step.integer("from"),
        to_version=step.integer("to"),
        url=step.text("url"),
        sha256=step.text("sha256"),
        size=step.integer("size"),
    )


def _parse_delta(delta: _Fields) -> Delta:
    return Delta(
        from_version=delta.integer("from"),
        url=delta.text("url"),
        sha256=delta.text("sha256"),
        size=delta.integer("size"),
    )
