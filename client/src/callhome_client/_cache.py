"""The offline cache file that keeps the last good signed answer across restarts."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

from ._answer import SignedAnswer
from ._files import write_atomically

logger = logging.getLogger("callhome_client")

_FORMAT = "callhome-verdict-cache/1"


class AnswerCache:
    """Stores the raw bytes of the last good answer; whoever loads it must verify it again."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._path = None if path is None else Path(path)

    def save(self, answer: SignedAnswer) -> None:
        """Write the answer; a failure is logged, never raised: the verdict itself is good."""
        if self._path is None:
            return
        document = {
            "format": _FORMAT,
            "request_body": base64.b64encode(answer.request_body).decode("ascii"),
            "answer_body": base64.b64encode(answer.answer_body).decode("ascii"),
            "signature": answer.signature,
        }
        try:
            write_atomically(self._path, json.dumps(document).encode("ascii"))
        except OSError as error:
            logger.warning("callhome: could not write the verdict cache: %s", error.strerror)

    def forget(self) -> None:
        """Remove the stored answer (the seat it vouched for is given up)."""
        if self._path is None:
            return
        try:
            self._path.unlink(missing_ok=True)
        except OSError as error:
            logger.warning("callhome: could not remove the verdict cache: %s", error.strerror)

    def load(self) -> SignedAnswer | None:
        """The stored answer, or None when there is none or the file cannot be read."""
        if self._path is None:
            return None
        try:
            document = json.loads(self._path.read_bytes())
            if document["format"] != _FORMAT or not isinstance(document["signature"], str):
                raise ValueError("unknown cache format")
            # a malformed field raises ValueError (binascii.Error), KeyError or TypeError
            return SignedAnswer(
                request_body=base64.b64decode(document["request_body"], validate=True),
                answer_body=base64.b64decode(document["answer_body"], validate=True),
                signature=document["signature"],
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("callhome: ignoring an unreadable verdict cache file")
            return None
