"""Settings that contradict each other are refused at start-up with a message naming them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.settings import Settings


def test_webhook_retention_must_outlast_the_longest_expiry_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLHOME_EXPIRING_NOTICE_DAYS", "60,7")
    monkeypatch.setenv("CALLHOME_WEBHOOK_RETENTION_DAYS", "60")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "CALLHOME_WEBHOOK_RETENTION_DAYS (60)" in message
    assert "CALLHOME_EXPIRING_NOTICE_DAYS (60)" in message

    monkeypatch.setenv("CALLHOME_WEBHOOK_RETENTION_DAYS", "61")
    assert Settings().webhook_retention_days == 61


def test_the_defaults_agree_and_no_notices_need_no_retention() -> None:
    defaults = Settings()
    assert defaults.webhook_retention_days > max(defaults.expiring_notice_days)
    assert Settings(expiring_notice_days=(), webhook_retention_days=1).webhook_retention_days == 1
