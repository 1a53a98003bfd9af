"""Standard Webhooks signatures: each endpoint's secret, both secrets during a rotation."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(event_id: str) -> str:
    return f"evt_{event_id.replace('-', '')}"


def headers(
    signing_secrets: list[str], msg_id: str, timestamp: dt.datetime, body: bytes
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (one `v1,` entry per secret)."""
    text = body.decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(msg_id, timestamp.astimezone(dt.UTC), text)
            for secret in signing_secrets
        ),
    }
