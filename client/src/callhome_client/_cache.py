"""The offline cache file: the last good signed answer and the trust record, across restarts."""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._answer import SignedAnswer
from ._files import write_atomically
from ._freshness import TrustRecord

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

    def save(self, answer: SignedAnswer | None, trust: TrustRecord) -> None:
        """Write the file; a failure is logged, never raised: what was trusted stays good."""
        if self._path is None:
            return
        document = {
            "format": _FORMAT,
            "request_body": None if answer is None else _encode(answer.request_body),
            "answer_body": None if answer is None else _encode(answer.answer_body),
            "signature": None if answer is None else answer.signature,
            "trust": trust.to_json(),
        }
        try:
            write_atomically(self._path, json.dumps(document).encode("ascii"))
        except OSError as error:
            logger.warning("callhome: could not write the verdict cache: %s", error.strerror)

    def load(self) -> CacheContents:
        """What the file holds; nothing when there is no file or it cannot be read."""
        if self._path is None:
            return CacheContents()
        try:
            document = json.loads(self._path.read_bytes())
            if document["format"] not in (_FORMAT, _FORMAT_1):
                raise ValueError("unknown cache format")
            # a malformed field raises ValueError (binascii.Error), KeyError or TypeError
            trust = (
                TrustRecord.from_json(document["trust"]) if "trust" in document else TrustRecord()
            )
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
        except FileNotFoundError:
            return CacheContents()
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("callhome: ignoring an unreadable verdict cache file")
            return CacheContents()


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
