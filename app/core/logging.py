"""Log configuration: JSON lines (or plain text) for our loggers and uvicorn's, a request id
on every line a request causes, and no uvicorn access log (it prints client addresses)."""

from __future__ import annotations

import contextvars
import logging
import logging.config
import time
from typing import Any

from app.core.json import dumps

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Set by the access-log middleware for the length of a request. The server makes
# it up: a client-sent id could smuggle anything into the logs.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Record attributes that are not extra fields; uvicorn's color_message repeats
# the message with terminal escapes.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and any `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            document["request_id"] = current
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return dumps(document).decode()


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    formatter = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "formatter": "default"}
    ours = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": "WARNING"},
        "loggers": {
            "uvicorn": ours,
            "uvicorn.error": ours,
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "callhome": ours,
        },
    }


def configure_logging(level: str, log_format: str) -> None:
    logging.config.dictConfig(logging_config(level, log_format))
