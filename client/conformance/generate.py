"""Writes vectors.json: the conformance vectors, made with the server's own signing code.

Run from the repository root: `.venv/bin/python client/conformance/generate.py`.
Keys come from fixed seeds and time from a fixed clock, so the output is the same on every
run; tests/test_conformance_vectors.py fails when the committed file is not what this makes.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from app.core.clock import rfc3339
from app.core.json import dumps
from app.core.keylist import add_key, first_key_list, retire_key, rotate_root
from app.core.settings import Settings
from app.core.signing import Signer
from app.customer.offline import licence_file_body
from app.customer.service import deactivation_answer
from app.licences.cache import LicenceSnapshot
from app.licences.models import LicenceStatus, Seat
from app.licences.schemas import short_machine_id
from app.ping.service import SeatOutcome, answer_document, licence_verdict
from app.releases.router import news_window
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import SigningKey

VECTORS = Path(__file__).with_name("vectors.json")
NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(days=14)
LICENCE_KEY = "CONFORMANCE-KEY-0001"
COMPUTER_ID = "c0ffee" * 10 + "beef"
# The pseudonym the server would keep for COMPUTER_ID (its key is the server's secret).
MACHINE_ID = "3f9a0c1b2d4e" + "0" * 20
THIS_MACHINE = short_machine_id(MACHINE_ID)


def seed(name: str) -> bytes:
    return hashlib.sha256(f"callhome conformance {name}".encode()).digest()


def signer(name: str) -> Signer:
    return Signer(Ed25519PrivateKey.from_private_bytes(seed(name)))


def nacl_key(name: str) -> SigningKey:
    return SigningKey(seed(name))


def at(**delta: float) -> str:
    return rfc3339(NOW + dt.timedelta(**delta))


ONLINE, ONLINE_2, OTHER = signer("online 1"), signer("online 2"), signer("not ours")
ROOT, ROOT_2 = nacl_key("root 1"), nacl_key("root 2")
ROOT_PUBLIC = base64.b64encode(bytes(ROOT.verify_key)).decode()


def ping_request(nonce: str = "conformance-nonce-000001") -> bytes:
    body = {
        "licence_key": LICENCE_KEY,
        "product": "mail",
        "version": "8.2.1",
        "computer_id": COMPUTER_ID,
        "user_count": 12,
        "signatures": {"spam": 41233},
        "nonce": nonce,
    }
    return json.dumps(body, separators=(",", ":")).encode()


LICENCE = LicenceSnapshot(
    id=uuid.UUID(int=1),
    product="mail",
    status=LicenceStatus.ACTIVE,
    expires_at=dt.datetime(2027, 12, 31, tzinfo=dt.UTC),
    max_machines=3,
    max_users=50,
    overage="report",
    activity_window=dt.timedelta(days=7),
    entitlements=frozenset({"spam"}),
    updates_until=None,
    trial_days=None,
    grace=None,
    floating=False,
)


def ping_answer(request: bytes, now: dt.datetime = NOW, **edits: Any) -> dict[str, Any]:
    licence = LICENCE
    chain = [
        {
            "from": version,
            "to": version + 1,
            "url": f"https://dl.example.com/spam-{version}-{version + 1}",
            "sha256": "cd" * 32,
            "size": 100,
        }
        for version in (41233, 41234, 41235)
    ]
    document = answer_document(
        verdict=licence_verdict(
            licence, "valid", SeatOutcome(Seat.GRANTED, 1, licence), 12, MACHINE_ID, now
        ),
        update=None,
        signatures={
            "spam": {
                "version": 41236,
                "url": "https://dl.example.com/spam-41236",
                "sha256": "ef" * 32,
                "size": 9000,
                "delta": None,
                "chain": chain,
            }
        },
        next_check_in=21600,
        lease_expires=now + LEASE,
        now=now,
        nonce=json.loads(request)["nonce"],
        body=request,
    )
    document.update(edits)
    return document


def answered(document: dict[str, Any], by: Signer = ONLINE) -> dict[str, Any]:
    body = dumps(document)
    return {"status": 200, "signature": by.signature_header(body), "body": body.decode()}


def vector(name: str, about: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "about": about,
        "kind": "verdict",
        "pinned_public_keys": [ONLINE.public_key_b64],
        "pinned_root_keys": [],
        "key_document": None,
        "now": rfc3339(NOW),
        "trusted": {},
        "clock_reached_at": None,
    }
    return base | fields


def refuse(error: str) -> dict[str, Any]:
    return {"decision": "refuse", "error": error}


def trust(**details: Any) -> dict[str, Any]:
    return {"decision": "trust", **details}


def key_documents() -> dict[str, dict[str, Any]]:
    """GET /v1/keys bodies: the first list, after a rotation, after a retirement, a new root."""
    first = first_key_list(ROOT, ONLINE.public_key_raw, NOW - dt.timedelta(days=30), 365)
    rotated = add_key(first, ROOT, ONLINE_2.public_key_raw, NOW - dt.timedelta(days=2), 365)
    retired = retire_key(rotated, ROOT, ONLINE.key_id, NOW - dt.timedelta(days=1), 365)
    new_root = rotate_root(rotated, ROOT, ROOT_2, NOW - dt.timedelta(days=1), 365)
    expired = first_key_list(ROOT, ONLINE_2.public_key_raw, NOW - dt.timedelta(days=400), 365)
    return {
        name: {"keys": [], **published.to_json()}
        for name, published in (
            ("rotated", rotated), ("retired", retired), ("new_root", new_root),
            ("expired", expired),
        )
    }  # fmt: skip


def verdict_vectors() -> list[dict[str, Any]]:
    request = ping_request()
    body = request.decode()
    good = answered(ping_answer(request))
    lease = at(days=14)
    tampered = dict(good, body=good["body"].replace('"max_users":50', '"max_users":5000'))
    return [
        vector("verdict-trusted", "a signed answer to this very request",
               request={"body": body}, answer=good,
               expect=trust(licence_status="valid", offline_until=lease,
                            plan={"spam": [[41233, 41234], [41234, 41235], [41235, 41236]]})),
        vector("verdict-tampered", "one byte of the body changed after signing",
               request={"body": body}, answer=tampered, expect=refuse("signature")),
        vector("verdict-unsigned", "no Callhome-Signature header",
               request={"body": body}, answer=dict(good, signature=None),
               expect=refuse("signature")),
        vector("verdict-unknown-key", "signed by a key neither pinned nor listed",
               request={"body": body}, answer=answered(ping_answer(request), OTHER),
               expect=refuse("unknown-key")),
        vector("verdict-other-nonce", "the answer to another request (a replay)",
               request={"body": ping_request("another-nonce-0000000001").decode()},
               answer=good, expect=refuse("mismatch")),
        vector("verdict-other-digest", "request_sha256 names other bytes",
               request={"body": body},
               answer=answered(ping_answer(request, request_sha256="0" * 64)),
               expect=refuse("mismatch")),
        vector("verdict-clock-6-min-fast", "the machine's clock runs 6 minutes ahead: trusted",
               now=at(minutes=6), request={"body": body}, answer=good,
               expect=trust(licence_status="valid", offline_until=lease)),
        vector("verdict-clock-6-min-slow", "the machine's clock runs 6 minutes behind: trusted",
               now=at(minutes=-6), request={"body": body}, answer=good,
               expect=trust(licence_status="valid", offline_until=lease)),
        vector("verdict-clock-2-days-off", "beyond the 1-day skew bound: a broken clock",
               now=at(days=2), request={"body": body}, answer=good,
               expect=refuse("clock-skew")),
        vector("verdict-expired", "expires_at is not after server_time",
               request={"body": body},
               answer=answered(ping_answer(request, issued_at=at(hours=-2), expires_at=at())),
               expect=refuse("expired")),
        vector("verdict-rollback", "issued before the newest verdict already trusted",
               trusted={"verdict": at(hours=1)}, now=at(hours=1, minutes=1),
               request={"body": body}, answer=answered(ping_answer(request)),
               expect=refuse("rollback")),
        vector("verdict-undated", "no issued_at",
               request={"body": body},
               answer=answered({k: v for k, v in ping_answer(request).items() if k != "issued_at"}),
               expect=refuse("malformed")),
        vector("verdict-restarts-the-moment-seen",
               "the clock read three days on at an offline check, then was put right: the "
               "answer is the true time, and the kept verdict holds offline again",
               clock_reached_at=at(days=3), request={"body": body}, answer=good,
               expect=trust(licence_status="valid", offline_until=lease),
               then=[{"about": "an hour later, the server down", "now": at(hours=1),
                      "expect": trust(licence_status="valid", offline_until=lease)},
                     {"about": "the clock set back a day behind the answer", "now": at(days=-1),
                      "expect": refuse("clock-behind")}]),
    ]  # fmt: skip


UPDATE = {
    "version": "8.3.0",
    "url": "https://dl.example.com/mail-8.3.0",
    "sha256": "ab" * 32,
    "size": 52_000_000,
    "notes_url": "https://example.com/mail/8.3.0",
    "critical": True,
}
ABSENT = object()
"""As a reshaped field's value: the field is left out."""


def reshaped(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A copy of the answer `document` with each field (a path, `__` between names) set to
    its value, or left out when that is ABSENT."""
    edited = copy.deepcopy(document)
    for path, value in fields.items():
        *parents, name = path.split("__")
        holder = edited
        for parent in parents:
            holder = holder[parent]
        if value is ABSENT:
            del holder[name]
        else:
            holder[name] = value
    return edited


def shape_vectors() -> list[dict[str, Any]]:
    """Signed answers whose fields have the shape docs/protocol.md shows, or one field not
    (section 3, step 3): an SDK hands the product a verdict whose fields it may read."""
    request = ping_request()
    body = request.decode()
    lease = at(days=14)
    first_step = ping_answer(request)["signatures"]["spam"]["chain"][0]
    delta = {name: first_step[name] for name in ("from", "url", "sha256", "size")}
    full = reshaped(
        ping_answer(request, update=UPDATE),
        licence__grace_until=at(days=400), licence__updates_until="2027-06-30",
        licence__entitlements=["fax", "spam"], licence__machines__floating=True,
        signatures__spam__delta=delta,
    )  # fmt: skip
    older = reshaped(
        ping_answer(request),
        licence__expires_at=None, licence__max_users=None, licence__grace_until=ABSENT,
        licence__entitlements=ABSENT, licence__updates_until=ABSENT,
        licence__machines__this_machine=ABSENT, licence__machines__floating=ABSENT,
        signatures__spam__chain=ABSENT,
    )  # fmt: skip

    def misshapen(name: str, about: str, **fields: Any) -> dict[str, Any]:
        answer = answered(reshaped(full, **fields))
        return vector(f"verdict-shape-{name}", about, request={"body": body}, answer=answer,
                      expect=refuse("malformed"))  # fmt: skip

    return [
        vector("verdict-shape-every-field", "every optional field there, each of the right shape",
               request={"body": body}, answer=answered(full),
               expect=trust(licence_status="valid", offline_until=lease,
                            plan={"spam": [[41233, 41234], [41234, 41235], [41235, 41236]]})),
        vector("verdict-shape-older-server",
               "no optional field an older server leaves out, the nullable ones null",
               request={"body": body}, answer=answered(older),
               expect=trust(licence_status="valid", offline_until=lease)),
        misshapen("expires-at-number", "licence.expires_at a number",
                  licence__expires_at=1830297600),
        misshapen("expires-at-no-day", "licence.expires_at on the 30th of February",
                  licence__expires_at="2027-02-30T00:00:00Z"),
        misshapen("max-users-text", "licence.max_users a string", licence__max_users="50"),
        misshapen("users-over-limit-number", "licence.users_over_limit 1 for true",
                  licence__users_over_limit=1),
        misshapen("entitlements-not-names", "licence.entitlements holds a number",
                  licence__entitlements=["spam", 7]),
        misshapen("entitlements-null", "licence.entitlements null, not a list",
                  licence__entitlements=None),
        misshapen("updates-until-no-day", "licence.updates_until the 31st of June",
                  licence__updates_until="2027-06-31"),
        misshapen("grace-until-a-date", "licence.grace_until a date, not a timestamp",
                  licence__grace_until="2027-12-31"),
        misshapen("grace-until-before-year-one", "licence.grace_until before the year 1 in UTC",
                  licence__grace_until="0001-01-01T00:00:00+01:00"),
        misshapen("expires-at-other-digits", "licence.expires_at in digits other than 0-9",
                  licence__expires_at="\u0662\u0660\u0662\u0667-12-31T00:00:00Z"),
        misshapen("updates-until-basic-form", "licence.updates_until as 20270630, no dashes",
                  licence__updates_until="20270630"),
        misshapen("allowed-text", "licence.machines.allowed a string",
                  licence__machines__allowed="3"),
        misshapen("active-true", "licence.machines.active true, not a count",
                  licence__machines__active=True),
        misshapen("this-machine-number", "licence.machines.this_machine a number",
                  licence__machines__this_machine=12),
        misshapen("floating-text", "licence.machines.floating a string",
                  licence__machines__floating="no"),
        misshapen("update-list", "update a list", update=[UPDATE]),
        misshapen("update-size-text", "update.size a string", update__size="52000000"),
        misshapen("update-no-notes-url", "update without notes_url (null says none)",
                  update__notes_url=ABSENT),
        misshapen("next-check-in-real", "next_check_in a real number, 21600.0",
                  next_check_in=21600.0),
        misshapen("next-check-in-text", "next_check_in a string", next_check_in="21600"),
        misshapen("offer-number", "a feed's offer a number, not an object",
                  signatures__spam=41236),
        misshapen("no-delta", "a feed's offer without delta (null says none)",
                  signatures__spam__delta=ABSENT),
        misshapen("chain-step-text", "a chain step's to a string",
                  signatures__spam__chain=[dict(first_step, to="41234")]),
        misshapen("chain-false", "a feed's chain false (only null or no chain says none)",
                  signatures__spam__chain=False),
    ]  # fmt: skip


def key_list_vectors() -> list[dict[str, Any]]:
    request = ping_request()
    body = request.decode()
    documents = key_documents()
    by_new_key = answered(ping_answer(request), ONLINE_2)
    by_old_key = answered(ping_answer(request), ONLINE)
    root_only = {"pinned_public_keys": [], "pinned_root_keys": [ROOT_PUBLIC]}
    forged = json.loads(json.dumps(documents["rotated"]))
    forged["key_list"]["signatures"][0]["ed25519"] = base64.b64encode(bytes(64)).decode()
    return [
        vector("keys-rotated", "only the root is pinned; the list vouches for the new key",
               **root_only, key_document=documents["rotated"],
               request={"body": body}, answer=by_new_key,
               expect=trust(licence_status="valid", offline_until=at(days=14))),
        vector("keys-overlap", "during the overlap the old key verifies too",
               **root_only, key_document=documents["rotated"],
               request={"body": body}, answer=by_old_key,
               expect=trust(licence_status="valid", offline_until=at(days=14))),
        vector("keys-retired", "signed by a key retired before the answer was issued",
               **root_only, key_document=documents["retired"],
               request={"body": body}, answer=by_old_key, expect=refuse("unknown-key")),
        vector("keys-new-root", "the list is signed by a root the pinned root vouched for",
               **root_only, key_document=documents["new_root"],
               request={"body": body}, answer=by_new_key,
               expect=trust(licence_status="valid", offline_until=at(days=14))),
        vector("keys-forged-list", "the key list's root signature does not verify",
               **root_only, key_document=forged,
               request={"body": body}, answer=by_new_key, expect=refuse("signature")),
        vector("keys-expired-list", "the key list itself has expired",
               **root_only, key_document=documents["expired"],
               request={"body": body}, answer=by_new_key, expect=refuse("expired")),
    ]  # fmt: skip


def news_vectors() -> list[dict[str, Any]]:
    settings = Settings()
    question = {"product": "mail", "channel": "stable", "version": "8.2.1"}
    request = {"path": "/v1/updates/mail", "params": {"version": "8.2.1", "channel": "stable"},
               "echo": question, "kind": "updates:mail:stable"}  # fmt: skip

    def news(now: dt.datetime, **edits: Any) -> dict[str, Any]:
        document = news_window(settings, now) | question | {"update": None} | edits
        return answered(document)

    return [
        vector("news-trusted", "the update news of this epoch", kind="news", request=request,
               answer=news(NOW + dt.timedelta(minutes=30)), now=at(minutes=30),
               expect=trust(issued_at=at(), expires_at=at(days=1))),
        vector("news-replayed-older", "last epoch's answer after this epoch's was trusted",
               kind="news", request=request, answer=news(NOW - dt.timedelta(hours=1)),
               trusted={"updates:mail:stable": at()}, now=at(minutes=30),
               expect=refuse("rollback")),
        vector("news-replayed-expired", "an answer of two days ago", kind="news",
               request=request, answer=news(NOW - dt.timedelta(days=2)),
               expect=refuse("expired")),
        vector("news-other-question", "the answer names another installed version",
               kind="news", request=request, answer=news(NOW, version="7.0"),
               expect=refuse("mismatch")),
    ]  # fmt: skip


def offline_vectors() -> list[dict[str, Any]]:
    request = ping_request()
    cached = {
        "kind": "offline",
        "request": {"body": request.decode()},
        "answer": answered(ping_answer(request)),
        "trusted": {"verdict": at()},
    }
    leased = trust(licence_status="valid", offline_until=at(days=14))
    lease_end = at(days=14)
    two_minutes_before_end = at(days=14, minutes=-2)
    return [
        vector("offline-leased", "the server is down; the cached verdict's lease runs",
               **cached, now=at(days=3), expect=leased),
        vector("offline-lease-over", "the lease has run out", **cached, now=lease_end,
               expect=refuse("expired")),
        vector("offline-clock-set-back", "the clock is a month behind the newest trusted time",
               **cached, now=at(days=-30), expect=refuse("clock-behind")),
        vector("offline-behind-the-moment-seen",
               "an offline check saw the clock at day 10; now it reads day 3, within the lease",
               **cached, clock_reached_at=at(days=10), now=at(days=3),
               expect=refuse("clock-behind")),
        vector("offline-lease-seen-over",
               "the lease was seen over; the clock is set back 2 minutes: still over",
               **cached, clock_reached_at=lease_end, now=two_minutes_before_end,
               expect=refuse("expired")),
        vector("offline-leased-then-set-back",
               "an offline check on day 10 records the clock: a restart cannot set it back",
               **cached, now=at(days=10), expect=leased,
               then=[{"about": "set back a week, within the lease", "now": at(days=3),
                      "expect": refuse("clock-behind")},
                     {"about": "right again", "now": at(days=11), "expect": leased}]),
        vector("offline-lease-over-then-set-back",
               "the lease is seen over: setting the clock back does not revive it",
               **cached, now=lease_end, expect=refuse("expired"),
               then=[{"about": "set back a day", "now": at(days=13),
                      "expect": refuse("clock-behind")},
                     {"about": "set back 2 minutes", "now": two_minutes_before_end,
                      "expect": refuse("expired")}]),
    ]  # fmt: skip


def deactivation_request(nonce: str = "conformance-nonce-000002") -> bytes:
    body = {"licence_key": LICENCE_KEY, "product": "mail", "computer_id": COMPUTER_ID,
            "nonce": nonce}  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


def deactivation_document(request: bytes, status: str = "deactivated") -> dict[str, Any]:
    """The server's answer to the deactivation `request`, as a document to edit and sign."""
    signed = deactivation_answer(
        ONLINE,
        status=status,
        this_machine=None if status == "unknown" else THIS_MACHINE,
        nonce=json.loads(request)["nonce"],
        body=request,
        now=NOW,
    )
    document: dict[str, Any] = json.loads(signed.body)
    return document


def deactivation_vectors() -> list[dict[str, Any]]:
    request = deactivation_request()
    asked = {"body": request.decode()}
    freed = answered(deactivation_document(request))
    unknown = answered(deactivation_document(request, "unknown"))
    forged = dict(unknown, body=unknown["body"].replace('"unknown"', '"deactivated"'))
    replayed = answered(deactivation_document(deactivation_request("another-nonce-0000000002")))
    check_in = answered(ping_answer(ping_request()))
    rotated = key_documents()["rotated"]

    def without(name: str) -> dict[str, Any]:
        document = deactivation_document(request)
        del document[name]
        return answered(document)

    def free(status: str = "deactivated") -> dict[str, Any]:
        return trust(status=status, this_machine=THIS_MACHINE, seat_free=True)

    return [
        vector("deactivation-freed", "the seat is free now: the kept verdict goes",
               kind="deactivation", request=asked, answer=freed, expect=free()),
        vector("deactivation-not-seated", "a second call: no seat to free, none kept either",
               kind="deactivation", request=asked,
               answer=answered(deactivation_document(request, "not_seated")),
               expect=free("not_seated")),
        vector("deactivation-unknown-licence", "no licence of this product has the key",
               kind="deactivation", request=asked, answer=unknown,
               expect=trust(status="unknown", this_machine=None, seat_free=False)),
        vector("deactivation-newer-status", "a status this SDK does not know frees nothing",
               kind="deactivation", request=asked,
               answer=answered(deactivation_document(request) | {"status": "queued"}),
               expect=trust(status="queued", this_machine=THIS_MACHINE, seat_free=False)),
        vector("deactivation-tampered", "'unknown' changed to 'deactivated' after signing",
               kind="deactivation", request=asked, answer=forged, expect=refuse("signature")),
        vector("deactivation-unsigned", "no Callhome-Signature header", kind="deactivation",
               request=asked, answer=dict(freed, signature=None), expect=refuse("signature")),
        vector("deactivation-unknown-key", "signed by a key neither pinned nor listed",
               kind="deactivation", request=asked,
               answer=answered(deactivation_document(request), OTHER),
               expect=refuse("unknown-key")),
        vector("deactivation-replayed", "the answer to another deactivation (a replay)",
               kind="deactivation", request=asked, answer=replayed, expect=refuse("mismatch")),
        vector("deactivation-other-digest", "request_sha256 names other bytes",
               kind="deactivation", request=asked,
               answer=answered(deactivation_document(request) | {"request_sha256": "0" * 64}),
               expect=refuse("mismatch")),
        vector("deactivation-a-check-in-answer", "a signed check-in answer in its place",
               kind="deactivation", request=asked, answer=check_in, expect=refuse("mismatch")),
        vector("deactivation-clock-6-min-fast",
               "the clock runs 6 minutes ahead, past expires_at: bound by its nonce, trusted",
               kind="deactivation", now=at(minutes=6), request=asked, answer=freed,
               expect=free()),
        vector("deactivation-clock-6-min-slow", "the clock runs 6 minutes behind: trusted",
               kind="deactivation", now=at(minutes=-6), request=asked, answer=freed,
               expect=free()),
        vector("deactivation-clock-2-days-off", "beyond the 1-day skew bound: a broken clock",
               kind="deactivation", now=at(days=-2), request=asked, answer=freed,
               expect=refuse("clock-skew")),
        vector("deactivation-undated", "no issued_at", kind="deactivation", request=asked,
               answer=without("issued_at"), expect=refuse("malformed")),
        vector("deactivation-no-status", "no status", kind="deactivation", request=asked,
               answer=without("status"), expect=refuse("malformed")),
        vector("deactivation-keys-rotated", "only the root is pinned; signed by the listed key",
               kind="deactivation", pinned_public_keys=[], pinned_root_keys=[ROOT_PUBLIC],
               key_document=rotated, request=asked,
               answer=answered(deactivation_document(request), ONLINE_2), expect=free()),
    ]  # fmt: skip


OFFLINE_KIND = "offline-licence:mail"


def licence_file(
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    licence: LicenceSnapshot = LICENCE,
    by: Signer = ONLINE,
) -> str:
    """The licence file `callhome offline issue` would write for this machine."""
    verdict = licence_verdict(
        licence, "valid", SeatOutcome(Seat.GRANTED, 1, licence), 0, MACHINE_ID, issued_at
    )
    body = licence_file_body(
        by, product=licence.product, verdict=verdict, computer_id=COMPUTER_ID,
        salt=seed("binding salt")[:16], issued_at=issued_at, expires_at=expires_at,
    )  # fmt: skip
    return body.decode()


def wrapped(document: bytes, signature: str | None) -> str:
    """A licence file's outer object around the signed `document` bytes."""
    return json.dumps({"document": base64.b64encode(document).decode(), "signature": signature})


def document_of(file: str) -> bytes:
    return base64.b64decode(json.loads(file)["document"])


def resigned(file: str, edit: Any, by: Signer = ONLINE) -> str:
    """The file with its document changed by `edit` (text -> text) and signed again."""
    document = edit(document_of(file).decode()).encode()
    return wrapped(document, by.signature_header(document))


def licence_vector(name: str, about: str, file: str, **fields: Any) -> dict[str, Any]:
    """An offline-licence vector: this machine (product, computer ID) checks `file`."""
    this_machine = {"product": "mail", "computer_id": COMPUTER_ID}
    defaults = {"request": this_machine}
    return vector(name, about, kind="offline-licence", licence_file=file, **defaults | fields)


def held(issued_at: str, expires_at: str, status: str = "valid") -> dict[str, Any]:
    return trust(licence_status=status, may_run=True, issued_at=issued_at,
                 expires_at=expires_at, this_machine=THIS_MACHINE)  # fmt: skip


def offline_licence_vectors() -> list[dict[str, Any]]:
    # the file: issued ten days ago for thirty; its renewal, issued two days ago for sixty
    first = licence_file(NOW - dt.timedelta(days=10), NOW + dt.timedelta(days=20))
    renewal = licence_file(NOW - dt.timedelta(days=2), NOW + dt.timedelta(days=58))
    first_held = held(at(days=-10), at(days=20))
    renewal_held = held(at(days=-2), at(days=58))
    ended = at(days=20)
    # a licence ending in five days with a week's grace: its file runs to the grace's end
    graced = dataclasses.replace(
        LICENCE, expires_at=NOW + dt.timedelta(days=5), grace=dt.timedelta(days=7)
    )
    in_grace = licence_file(NOW, NOW + dt.timedelta(days=12), graced)
    fresh = licence_file(NOW, NOW + dt.timedelta(days=30))
    signature = json.loads(first)["signature"]
    tampered = document_of(first).replace(b'"max_users":50', b'"max_users":5000')
    check_in = answered(ping_answer(ping_request()))
    undated = resigned(first, lambda text: text.replace(f'"issued_at":"{at(days=-10)}",', ""))
    worded = resigned(first, lambda text: text.replace('"max_users":50', '"max_users":"50"'))
    two_minutes_before_end = at(days=20, minutes=-2)
    return [
        licence_vector("offline-licence-held", "a file for this machine, within its time",
                       first, expect=first_held),
        licence_vector("offline-licence-in-grace",
                       "past the licence's expiry, within the grace the file runs into",
                       in_grace, now=at(days=6),
                       expect=held(at(), at(days=12), status="expired")),
        licence_vector("offline-licence-tampered", "max_users changed after signing",
                       wrapped(tampered, signature), expect=refuse("signature")),
        licence_vector("offline-licence-unsigned", "the file has no signature",
                       wrapped(document_of(first), None), expect=refuse("signature")),
        licence_vector("offline-licence-unknown-key", "signed by a key that is not pinned",
                       resigned(first, lambda text: text, OTHER), expect=refuse("unknown-key")),
        licence_vector("offline-licence-other-machine", "copied to another machine",
                       first, request={"product": "mail", "computer_id": "d" * 64},
                       expect=refuse("wrong-machine")),
        licence_vector("offline-licence-other-product", "a file for another product",
                       first, request={"product": "fax", "computer_id": COMPUTER_ID},
                       expect=refuse("mismatch")),
        licence_vector("offline-licence-a-check-in-answer",
                       "a signed check-in answer dressed as a licence file",
                       wrapped(check_in["body"].encode(), check_in["signature"]),
                       expect=refuse("malformed")),
        licence_vector("offline-licence-not-base64", "the document is not base64",
                       json.dumps({"document": "not base64!", "signature": signature}),
                       expect=refuse("malformed")),
        licence_vector("offline-licence-undated", "signed, but without issued_at",
                       undated, expect=refuse("malformed")),
        licence_vector("offline-licence-max-users-text",
                       "signed, but its licence's max_users is a string",
                       worded, expect=refuse("malformed")),
        licence_vector("offline-licence-ended", "the clock has reached the file's end",
                       first, now=ended, expect=refuse("expired")),
        licence_vector("offline-licence-clock-4-min-slow",
                       "a file issued just now, on a clock 4 minutes behind: held",
                       fresh, now=at(minutes=-4), expect=held(at(), at(days=30))),
        licence_vector("offline-licence-clock-before-issue",
                       "a clock a day behind the file's issue: turned back, or far wrong",
                       fresh, now=at(days=-1), expect=refuse("clock-behind")),
        licence_vector("offline-licence-replayed-older",
                       "the first file put back after its renewal was accepted",
                       first, trusted={OFFLINE_KIND: at(days=-2)}, expect=refuse("rollback")),
        licence_vector("offline-licence-same-again", "the accepted file, read at the next start",
                       first, trusted={OFFLINE_KIND: at(days=-10)}, expect=first_held),
        licence_vector("offline-licence-clock-behind-the-record",
                       "the clock is set back behind the renewal the record holds",
                       first, trusted={OFFLINE_KIND: at(days=-2)}, now=at(days=-5),
                       expect=refuse("clock-behind")),
        licence_vector("offline-licence-set-back-after-end",
                       "the file was seen ended; the clock is set back a day",
                       first, clock_reached_at=ended, now=at(days=19),
                       expect=refuse("clock-behind")),
        licence_vector("offline-licence-set-back-minutes-after-end",
                       "the file was seen ended; the clock is set back 2 minutes: still ended",
                       first, clock_reached_at=ended, now=two_minutes_before_end,
                       expect=refuse("expired")),
        licence_vector("offline-licence-renewal-after-end",
                       "the first file was seen ended; its renewal holds",
                       renewal, clock_reached_at=ended, now=two_minutes_before_end,
                       expect=renewal_held),
        licence_vector("offline-licence-renewal-then-older",
                       "the renewal is accepted: the first file is refused from then on",
                       renewal, expect=renewal_held,
                       then=[{"about": "the first file put back", "now": at(),
                              "licence_file": first, "expect": refuse("rollback")},
                             {"about": "the renewal at the next start", "now": at(days=1),
                              "licence_file": renewal, "expect": renewal_held}]),
        licence_vector("offline-licence-ended-then-set-back",
                       "the file is seen ended: setting the clock back does not revive it",
                       first, now=ended, expect=refuse("expired"),
                       then=[{"about": "set back a day", "now": at(days=19),
                              "licence_file": first, "expect": refuse("clock-behind")},
                             {"about": "set back 2 minutes", "now": two_minutes_before_end,
                              "licence_file": first, "expect": refuse("expired")},
                             {"about": "its renewal", "now": two_minutes_before_end,
                              "licence_file": renewal, "expect": renewal_held}]),
    ]  # fmt: skip


def vectors() -> dict[str, Any]:
    return {
        "format": "callhome-conformance/1",
        "vectors": verdict_vectors() + shape_vectors() + key_list_vectors() + news_vectors()
        + offline_vectors() + deactivation_vectors() + offline_licence_vectors(),
    }  # fmt: skip


def rendered() -> str:
    return json.dumps(vectors(), indent=1, sort_keys=False) + "\n"


if __name__ == "__main__":
    VECTORS.write_text(rendered())
    sys.stdout.write(f"wrote {VECTORS}\n")
