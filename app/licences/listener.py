"""Drop licences other nodes changed from this node's cache, as PostgreSQL notifies them."""

from __future__ import annotations

import contextlib
import uuid

from app.core.notifications import NotificationListener
from app.licences.cache import LicenceCache
from app.licences.changes import NODE_ID, NOTIFY_CHANNEL


def follow_licence_changes(listener: NotificationListener, cache: LicenceCache) -> None:
    def invalidate(payload: str) -> None:
        licence_id, _, node = payload.partition(":")
        if node == NODE_ID:
            return
        with contextlib.suppress(ValueError):
            cache.invalidate(uuid.UUID(licence_id))

    listener.subscribe(NOTIFY_CHANNEL, invalidate)
    # Changes made while we were not listening are unknown: start afresh.
    listener.on_gap(cache.clear)
