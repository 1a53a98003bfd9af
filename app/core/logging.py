"""Log configuration: one format for our loggers and uvicorn's, and no access log of uvicorn's."""

from __future__ import annotations

import logging
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=FORMAT)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """Uvicorn's loggers, minus uvicorn.access: it prints client addresses."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"format": FORMAT}},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "callhome": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }
