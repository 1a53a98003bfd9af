"""The offline cache file: the last good signed answer and the trust record, across restarts.

Several writers may share the file (a running Client and read_offline_licence): each writes
by merging into what the file holds, under the file's lock, so none drops what another
recorded and none moves the record back."""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._answer import SignedAnswer
from ._constants import RECORD_LOCK_WAIT_S
from ._files import locked_for_update, write_atomically
from ._freshness import VERDICT, TrustRecord

logger = logging.getLogger("callhome_client")

_FORMAT = "callhome-verdict-cache/2"
# Files of the first format hold an answer and no trust record; they are read, never written.
_FORMAT_1 = "callhome-verdict-cache/1"


@dataclass
class CacheContents:
    """What the file held: the answer (to verify again before use) and the trust record."""

    answer: SignedAnswer | None = None
    trust: TrustRecord = field(default_factory=TrustRecord)


class AnswerCache:
    """Stores the raw bytes of the last good answer; whoever loads it must verify it again."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._path = None if path is None else Path(path)

    def keep(self, answer: SignedAnswer | None, trust: TrustRecord) -> TrustRecord:
        """Merge `trust` into the file's record and keep `answer` (None: drop the kept one),
        unless the file's record holds a newer verdict than `trust` (another writer's, whose
        answer stays). Returns the merged record."""
        return self._merge(trust, answer, keep_answer=True)

    def record(self, trust: TrustRecord) -> TrustRecord:
        """Merge `trust` into the file's record, leaving the file's answer as it is.
        Returns the merged record."""
        return self._merge(trust, None, keep_answer=False)

    def _merge(
        self, trust: TrustRecord, answer: SignedAnswer | None, *, keep_answer: bool
    ) -> TrustRecord:
        """A failure to write is logged, never raised: what was trusted stays good."""
        if self._path is None:
            return trust
        merged = trust
        try:
            with locked_for_update(self._path, RECORD_LOCK_WAIT_S) as current:
                on_file = _parse(current) if current else CacheContents()
                merged = on_file.trust.merged(trust)
                if not keep_answer or _newer_verdict(on_file.trust, trust):
                    answer = on_file.answer
                write_atomically(self._path, _document(answer, merged))
        except OSError as error:
            logger.warning("callhome: could not write the verdict cache: %s", error.strerror)
        return merged

    def load(self) -> CacheContents:
        """What the file holds; nothing when there is no file (or an empty one, which a
        writer that failed left) or it cannot be read."""
        if self._path is None:
            return CacheContents()
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return CacheContents()
        except OSError:
            logger.warning("callhome: ignoring an unreadable verdict cache file")
            return CacheContents()
        return _parse(data) if data else CacheContents()


def _parse(data: bytes) -> CacheContents:
    """The file's contents; nothing (logged) when they are not a cache file."""
    try:
        document = json.loads(data)
        if document["format"] not in (_FORMAT, _FORMAT_1):
            raise ValueError("unknown cache format")
        # a malformed field raises ValueError (binascii.Error), KeyError or TypeError
        trust = TrustRecord.from_json(document["trust"]) if "trust" in document else TrustRecord()
        if document["answer_body"] is None:
            return CacheContents(None, trust)
        if not isinstance(document["signature"], str):
            raise ValueError("the answer has no signature")
        answer = SignedAnswer(
            request_body=base64.b64decode(document["request_body"], validate=True),
            answer_body=base64.b64decode(document["answer_body"], validate=True),
            signature=document["signature"],
        )
        return CacheContents(answer, trust)
    except (ValueError, KeyError, TypeError):
        logger.warning("callhome: ignoring an unreadable verdict cache file")
        return CacheContents()


def _newer_verdict(record: TrustRecord, than: TrustRecord) -> bool:
    """Whether `record` trusted a verdict issued after any `than` trusted."""
    issued_at, theirs = record.newest_issued_at.get(VERDICT), than.newest_issued_at.get(VERDICT)
    return issued_at is not None and (theirs is None or issued_at > theirs)


def _document(answer: SignedAnswer | None, trust: TrustRecord) -> bytes:
    document = {
        "format": _FORMAT,
        "request_body": None if answer is None else _encode(answer.request_body),
        "answer_body": None if answer is None else _encode(answer.answer_body),
        "signature": None if answer is None else answer.signature,
        "trust": trust.to_json(),
    }
    return json.dumps(document).encode("ascii")


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
