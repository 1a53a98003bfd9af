"""Configuration from the environment (prefix CALLHOME_) or a .env file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLHOME_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Path("var")
    # Empty means the embedded default: a SQLite file in the data directory.
    database_url: str = ""
    # Staff reads may go to a replica; empty means the primary.
    read_database_url: str = ""
    # Secrets. Empty means "created once in the data directory", which only the
    # embedded default allows; on PostgreSQL they must be configured.
    pseudonym_key: str = Field(default="", repr=False)
    signing_key_file: Path | None = None
    # The key list signed by the offline root (docs/deploy.md); empty: none on PostgreSQL,
    # the data directory's key-list.json (when `callhome keys init-root` made one) on SQLite.
    key_list_file: Path | None = None
    # Peers whose X-Forwarded-For is believed (CIDRs, comma separated).
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()

    ping_retention_days: int = Field(default=40, ge=1)
    machine_retention_days: int = Field(default=400, ge=1)
    rollup_retention_days: int = Field(default=2190, ge=1)
    # A licence expired or revoked this long ago is erased whole, with its reports
    # and the audit entries about it (docs/privacy.md).
    licence_retention_days: int = Field(default=2190, ge=1)
    # Resolved or dismissed reports, with their history, this long after they closed.
    closed_report_retention_days: int = Field(default=730, ge=1)
    audit_retention_days: int = Field(default=2190, ge=1)
    # Staff tokens this long after they were revoked or expired (their sessions with them).
    staff_token_retention_days: int = Field(default=400, ge=1)
    # The pg_repack client that rewrites tables after an erasure on PostgreSQL (docs/privacy.md).
    pg_repack_command: str = "pg_repack"
    activity_window_days: int = Field(default=7, ge=1, le=365)
    maintenance_interval_s: float = Field(default=3600, gt=0)

    check_in_interval_s: int = Field(default=6 * 3600, ge=60)
    lease_s: int = Field(default=14 * 86400, ge=3600)
    # An offline licence file runs this long unless staff give --days; never past the
    # licence's expiry (or the end of its grace).
    offline_licence_days: int = Field(default=365, ge=1, le=3650)
    licence_cache_ttl_s: float = Field(default=30.0, ge=0)
    # On SQLite, how often a server looks whether another process changed a licence.
    licence_change_poll_s: float = Field(default=0.5, gt=0)
    licence_cache_size: int = Field(default=100_000, ge=1)
    # How often the release catalog is reread on SQLite; PostgreSQL notifies changes.
    catalog_refresh_s: float = Field(default=10.0, gt=0)
    # The update and feed news answers are issued at the start of an epoch of
    # news_epoch_s, so an unchanged offer keeps its body (and ETag) within it, and
    # expire news_validity_s later: how long a replayed old offer can hide a new one.
    news_epoch_s: int = Field(default=3600, ge=60)
    news_validity_s: int = Field(default=86400, ge=120)
    # Download URLs bound to the licence and checked by nginx secure_link (docs/deploy.md):
    # the shared secret (empty: URLs are offered as published), the prefix of the URLs to
    # sign (empty: all), and how long a URL lasts (one to two of these).
    download_secret: str = Field(default="", repr=False)
    download_signed_prefix: str = ""
    download_url_ttl_s: int = Field(default=3600, ge=60)

    batch_max_size: int = Field(default=1000, ge=1)
    store_timeout_s: float = Field(default=5.0, gt=0)
    retry_after_s: int = Field(default=30, ge=1)
    # Under pressure the server stretches next_check_in (docs/deploy.md): by the
    # smoothed batch commit latency over steer_commit_s, capped at steer_max_factor.
    steer_commit_s: float = Field(default=0.1, gt=0)
    steer_max_factor: float = Field(default=4.0, ge=1)

    # Rate limits on POST /v1/ping, per hour; 0 switches a limit off. A licence
    # may make rate_limit_machine_per_hour pings per machine (allowed or seated,
    # whichever is more), never fewer than rate_limit_licence_per_hour; a key
    # that matches no licence gets the latter.
    rate_limit_licence_per_hour: int = Field(default=120, ge=0)
    rate_limit_machine_per_hour: int = Field(default=60, ge=0)
    rate_limit_network_per_hour: int = Field(default=3600, ge=0)
    # Pseudonyms each limit remembers per process (least recently seen dropped first).
    rate_limit_entries: int = Field(default=100_000, ge=1)
    # Shared limits across nodes; empty: each process limits on its own.
    rate_limit_redis_url: str = Field(default="", repr=False)
    rate_limit_sync_s: float = Field(default=1.0, gt=0)

    metrics_enabled: bool = True

    # Abuse detection (docs/abuse.md). The sweep runs in the server every
    # detect_interval_s (0: only `callhome detect`, from cron); findings from
    # the ping path are written every findings_flush_s.
    detect_interval_s: float = Field(default=300.0, ge=0)
    findings_flush_s: float = Field(default=5.0, gt=0)
    # machine_churn: more distinct machines in churn_window_days than
    # max(churn_min_machines, churn_factor x max_machines).
    churn_window_days: int = Field(default=30, ge=1, le=365)
    churn_factor: float = Field(default=3.0, ge=1)
    churn_min_machines: int = Field(default=10, ge=1)
    # network_spread: more distinct networks on one UTC day than
    # max(spread_min_networks, spread_factor x max_machines).
    spread_factor: float = Field(default=2.0, ge=1)
    spread_min_networks: int = Field(default=4, ge=1)

    # Webhooks (docs/webhooks.md). Deliveries are retried for webhook_retry_hours; an
    # endpoint failing throughout that window is disabled. http:// and loopback
    # addresses are for tests only (webhook_allow_http); private networks are refused
    # unless listed in webhook_allowed_cidrs.
    webhook_retry_hours: float = Field(default=72.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_poll_s: float = Field(default=1.0, gt=0)
    webhook_concurrency: int = Field(default=8, ge=1, le=256)
    webhook_secret_overlap_hours: float = Field(default=24.0, ge=0)
    webhook_retention_days: int = Field(default=40, ge=1)
    webhook_allow_http: bool = False
    webhook_allowed_cidrs: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    # licence.expiring is sent this many days before expires_at, once for each.
    expiring_notice_days: Annotated[tuple[int, ...], NoDecode] = (30, 7, 1)

    admin_enabled: bool = True
    # The staff web page's sessions end after this long unused, and after
    # staff_session_lifetime_s whatever their use (docs/staff-web.md).
    staff_session_idle_s: int = Field(default=1800, ge=60)
    staff_session_lifetime_s: int = Field(default=12 * 3600, ge=300)
    # The key holder's /my/ page: shorter, as a licence key is shared more widely.
    customer_session_idle_s: int = Field(default=900, ge=60)
    customer_session_lifetime_s: int = Field(default=2 * 3600, ge=300)
    workers: int = Field(default=1, ge=1)
    # Slow clients (docs/deploy.md): a request's head, then its body, must arrive within
    # these, or the connection is closed.
    header_read_timeout_s: float = Field(default=10.0, gt=0)
    body_read_timeout_s: float = Field(default=20.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    @field_validator("trusted_proxies", "webhook_allowed_cidrs", mode="before")
    @classmethod
    def _parse_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(
                ipaddress.ip_network(part.strip(), strict=False)
                for part in value.split(",")
                if part.strip()
            )
        return value

    @model_validator(mode="after")
    def _news_outlive_their_epoch(self) -> Settings:
        # A 304 keeps the client on the body it has: that body must not expire
        # before the epoch that issued it ends.
        if self.news_validity_s <= self.news_epoch_s:
            raise ValueError("CALLHOME_NEWS_VALIDITY_S must be longer than CALLHOME_NEWS_EPOCH_S")
        return self

    @field_validator("expiring_notice_days", mode="before")
    @classmethod
    def _parse_days(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("expiring_notice_days")
    @classmethod
    def _days_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(days < 1 or days > 365 for days in value):
            raise ValueError("notice days lie between 1 and 365")
        return tuple(sorted(set(value), reverse=True))

    @model_validator(mode="after")
    def _retention_outlasts_notices(self) -> Settings:
        # A notice's dedupe key lives in the outbox: were its event deleted before the
        # licence expires, the same notice would be sent again.
        longest = max(self.expiring_notice_days, default=0)
        if self.webhook_retention_days <= longest:
            raise ValueError(
                f"CALLHOME_WEBHOOK_RETENTION_DAYS ({self.webhook_retention_days}) must exceed "
                f"the longest of CALLHOME_EXPIRING_NOTICE_DAYS ({longest}), or expiry notices "
                "would be sent twice"
            )
        return self

    @property
    def embedded_store(self) -> Path:
        """The SQLite file of the embedded default."""
        return self.data_dir / "callhome.sqlite3"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.embedded_store}"

    @property
    def is_embedded(self) -> bool:
        return not self.database_url

    @property
    def is_postgresql(self) -> bool:
        return self.effective_database_url.startswith("postgresql")
