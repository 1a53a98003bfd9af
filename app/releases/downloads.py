"""Short-lived download URLs bound to a licence, in the form nginx's `secure_link` checks
without calling callhome (docs/deploy.md): a leaked URL stops working when it expires."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from app.core.clock import Clock
from app.core.settings import Settings

Offer = dict[str, Any]


class DownloadLinks:
    """Signs the URLs of what a licence is offered; URLs outside the signed prefix, or all
    of them when no secret is configured, are offered as published."""

    def __init__(self, settings: Settings, clock: Clock):
        self._secret = settings.download_secret.encode()
        self._prefix = settings.download_signed_prefix
        self._ttl_s = settings.download_url_ttl_s
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    def licence_token(self, licence_id: uuid.UUID) -> str:
        """Names the licence in its URLs without giving its id away (only the secret links them)."""
        return hmac.new(self._secret, licence_id.bytes, hashlib.sha256).hexdigest()[:16]

    def expires_at_epoch(self) -> int:
        """URLs expire on the second TTL boundary from now: between one and two TTLs ahead,
        so every URL a licence is offered within one TTL is the same (news keep their ETag)."""
        return (int(self._clock.now().timestamp()) // self._ttl_s + 2) * self._ttl_s

    def sign(self, url: str, licence_id: uuid.UUID, expires: int | None = None) -> str:
        if not self._secret or not url.startswith(self._prefix):
            return url
        expires = self.expires_at_epoch() if expires is None else expires
        token = self.licence_token(licence_id)
        parts = urlsplit(url)
        # nginx: secure_link_md5 "$secure_link_expires$uri$arg_l <secret>"
        material = f"{expires}{parts.path}{token} ".encode() + self._secret
        digest = base64.urlsafe_b64encode(hashlib.md5(material).digest()).decode().rstrip("=")
        query = urlencode({"l": token, "e": expires, "s": digest})
        joined = f"{parts.query}&{query}" if parts.query else query
        return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))

    def sign_offer(self, offer: Offer | None, licence_id: uuid.UUID) -> Offer | None:
        """The offer with every URL in it signed for the licence (a copy: offers are shared)."""
        if offer is None or not self._secret:
            return offer
        expires = self.expires_at_epoch()
        signed = offer | {"url": self.sign(offer["url"], licence_id, expires)}
        if offer.get("delta"):
            signed["delta"] = offer["delta"] | {
                "url": self.sign(offer["delta"]["url"], licence_id, expires)
            }
        if offer.get("chain"):
            signed["chain"] = [
                step | {"url": self.sign(step["url"], licence_id, expires)}
                for step in offer["chain"]
            ]
        return signed
