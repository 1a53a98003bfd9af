"""Standard Webhooks signatures: each endpoint's secret, both secrets during a rotation;
the secrets kept sealed, so a copy of the database cannot forge a webhook."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid

from standardwebhooks import Webhook

from app.core.sealing import Sealer
from app.core.secrets import pseudonym_key
from app.core.settings import Settings
from app.events.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SEALING_PURPOSE = "webhook endpoint secrets"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class EndpointSecrets:
    """Seals and opens endpoint secrets under a key derived from the pseudonym key, which
    the server already requires from outside the database; each bound to its endpoint."""

    def __init__(self, settings: Settings):
        self._sealer = Sealer(pseudonym_key(settings), SEALING_PURPOSE)

    def seal(self, endpoint_id: uuid.UUID, secret: str) -> str:
        return self._sealer.seal(secret, bound_to=endpoint_id.bytes)

    def open(self, endpoint_id: uuid.UUID, sealed: str) -> str:
        return self._sealer.open(sealed, bound_to=endpoint_id.bytes)

    def signing(self, endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during the
        overlap after a rotation. Raises `Unsealable` if the key is not the one that sealed."""
        sealed = [endpoint.secret_sealed]
        if (
            endpoint.previous_secret_sealed
            and endpoint.previous_secret_until is not None
            and endpoint.previous_secret_until > now
        ):
            sealed.append(endpoint.previous_secret_sealed)
        return [self.open(endpoint.id, value) for value in sealed]


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
