"""The delivery worker: plans the outbox's events into deliveries, claims the due ones
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of nodes share the work), sends
them signed, and records each outcome with its next attempt.

A claim is a lease: a worker that dies mid-send leaves its deliveries to be claimed again
once the lease lapses. Delivery is at least once; receivers dedupe by `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import functools
import logging
import random
import ssl
import time
from dataclasses import dataclass
from itertools import groupby

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit, metrics
from app.core.clock import Clock, rfc3339
from app.core.database import Database
from app.core.jobs.repository import claim_run
from app.core.json import dumps
from app.core.sealing import Unsealable
from app.core.settings import Settings
from app.events import guard, notices, repository, signing
from app.events.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookEndpoint
from app.events.repository import Claimed

logger = logging.getLogger("callhome.webhooks")

# Who the audit log names when the worker, not staff, disables an endpoint.
WORKER_ACTOR = "webhooks"
# Names "planning the outbox" among PostgreSQL advisory locks: one planner at a time
# keeps events in order per endpoint.
PLAN_LOCK_ID = 0x77686F6F
# The expiry notices' job in job_runs: one node runs them each period.
NOTICES_JOB = "expiry_notices"
PLAN_BATCH = 500
# The first retry waits this long, doubling up to the cap (then jittered).
BACKOFF_FIRST_S = 5.0
BACKOFF_CAP_S = 2 * 3600.0
# What is read of a receiver's answer, only to finish the exchange: never stored.
RESPONSE_READ_LIMIT = 4096
USER_AGENT = "callhome-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """One attempt: delivered, or why not, in a closed set of error classes."""

    delivered: bool
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


def backoff_s(attempts: int) -> float:
    """Exponential, capped, with jitter so that endpoints back from an outage are not hit
    by every waiting delivery in the same second."""
    base: float = min(BACKOFF_FIRST_S * 2.0 ** max(attempts - 1, 0), BACKOFF_CAP_S)
    return base * random.uniform(0.75, 1.25)


def retry_after_s(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def message_body(claimed: Claimed) -> bytes:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    event = claimed.event
    return dumps(
        {"type": event.type, "timestamp": rfc3339(event.occurred_at), "data": event.payload}
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verification httpx makes by default, made once per process: each context reads
    the CA bundle (20 ms), and every app the process makes has a worker."""
    return httpx.create_ssl_context(trust_env=False)


class WebhookWorker:
    """Runs in every server: the delivery loop and, hourly, the expiry notices."""

    def __init__(self, database: Database, settings: Settings, clock: Clock):
        self._database = database
        self._settings = settings
        self._clock = clock
        self._secrets = signing.EndpointSecrets(settings)
        self._window = dt.timedelta(hours=settings.webhook_retry_hours)
        # The claim outlives the longest attempt by a margin.
        self._lease = dt.timedelta(seconds=settings.webhook_timeout_s + 30)
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            # No proxy from the environment, and no connection reused: every attempt
            # connects to the address vetted for it.
            trust_env=False,
            verify=_tls_context(),
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(settings.webhook_timeout_s),
        )
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._deliver_forever(), name="callhome-webhooks"),
            asyncio.create_task(self._notices_forever(), name="callhome-expiry-notices"),
        ]

    async def stop(self) -> None:
        """Let the round under way finish (its sends are bounded by the timeout), then stop.
        A send cut short is not lost: its lease lapses and another attempt follows."""
        self._stopping.set()
        if self._tasks:
            _, running = await asyncio.wait(
                self._tasks, timeout=self._settings.webhook_timeout_s + 1
            )
            for task in running:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        await self._client.aclose()

    async def _deliver_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = await self.run_once()
            except Exception as error:
                # The store may be away for a while; nothing is lost, the next round retries.
                logger.warning("webhook round failed: %s", type(error).__name__)
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._settings.webhook_poll_s)

    async def _notices_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                now = self._clock.now()
                # Every node wakes each interval; the first to claim the period runs it.
                if await claim_run(
                    self._database.engine,
                    NOTICES_JOB,
                    now,
                    self._settings.maintenance_interval_s,
                ):
                    async with self._database.sessions() as session, session.begin():
                        await notices.run(session, self._settings, now)
            except Exception as error:
                logger.warning("expiry notices failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.maintenance_interval_s)

    async def run_once(self) -> int:
        """One round: plan new events, send what is due; how many deliveries were tried.
        The queue's state says first whether there is anything to do: most rounds find
        nothing, and then cost one query."""
        state = await self._queue_state()
        planned = await self.plan() if state.unplanned else 0
        tried = await self.deliver_due() if planned or state.due_by(self._clock.now()) else 0
        if planned or tried:
            state = await self._queue_state()
        self._observe_queue(state)
        return tried

    async def plan(self) -> int:
        """Make a delivery of each new event for every active endpoint subscribed to it."""
        now = self._clock.now()
        async with self._database.sessions() as session, session.begin():
            if not await repository.try_lock(session, PLAN_LOCK_ID):
                return 0
            events = await repository.unplanned_events(session, PLAN_BATCH)
            if not events:
                return 0
            endpoints = await repository.active_endpoints(session)
            for event in events:
                for endpoint in endpoints:
                    # An endpoint hears of what happened after it was added, not before.
                    if event.type in endpoint.events and endpoint.created_at <= event.occurred_at:
                        repository.add_delivery(session, endpoint.id, event.seq, now)
                event.planned_at = now
            return len(events)

    async def deliver_due(self) -> int:
        now = self._clock.now()
        async with self._database.sessions() as session, session.begin():
            claimed = await repository.claim_due(
                session, now, now + self._lease, self._settings.webhook_concurrency
            )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._send(entry, now) for entry in claimed))
        await self._record(list(zip(claimed, outcomes, strict=True)))
        return len(claimed)

    async def _send(self, claimed: Claimed, now: dt.datetime) -> Outcome:
        started = time.perf_counter()

        def outcome(**facts: object) -> Outcome:
            latency_ms = round((time.perf_counter() - started) * 1000)
            return Outcome(latency_ms=latency_ms, **facts)  # type: ignore[arg-type]

        try:
            # Resolved and vetted at every attempt: the name may point elsewhere by now.
            target = await guard.vet(claimed.endpoint.url, self._settings)
        except guard.Refused:
            return outcome(delivered=False, error="address_refused")
        try:
            signing_secrets = self._secrets.signing(claimed.endpoint, now)
        except Unsealable:
            # Sealed under another key (the pseudonym key was changed): nothing can sign.
            return outcome(delivered=False, error="secret_unreadable")
        body = message_body(claimed)
        headers = signing.headers(
            signing_secrets, signing.message_id(str(claimed.event.id)), now, body
        )
        headers |= {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": target.host_header,
        }
        try:
            async with asyncio.timeout(self._settings.webhook_timeout_s):
                async with self._client.stream(
                    "POST",
                    target.connect_url,
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": target.host},
                ) as response:
                    await _read_some(response)
        except (TimeoutError, httpx.TimeoutException):
            return outcome(delivered=False, error="timeout")
        except httpx.ConnectError:
            return outcome(delivered=False, error="connection")
        except httpx.HTTPError:
            return outcome(delivered=False, error="protocol")
        if 200 <= response.status_code < 300:
            return outcome(delivered=True, status_code=response.status_code)
        return outcome(
            delivered=False,
            status_code=response.status_code,
            error="redirect" if 300 <= response.status_code < 400 else "http_status",
            retry_after_s=retry_after_s(response.headers.get("retry-after"), now),
        )

    async def _record(self, results: list[tuple[Claimed, Outcome]]) -> None:
        """Write the outcomes; endpoint by endpoint in id order, so two workers lock alike."""
        now = self._clock.now()
        ordered = sorted(
            results, key=lambda pair: (str(pair[0].endpoint.id), pair[0].delivery.event_seq)
        )
        counted: list[str] = []
        disabled = 0
        async with self._database.sessions() as session, session.begin():
            for endpoint_id, group in groupby(ordered, key=lambda pair: pair[0].endpoint.id):
                endpoint = await repository.get_endpoint(session, endpoint_id, lock=True)
                if endpoint is None:
                    continue  # removed meanwhile, with its deliveries
                for claimed, outcome in group:
                    delivery = await repository.get_delivery(
                        session, endpoint_id, claimed.delivery.event_seq
                    )
                    if delivery is None or delivery.status != DeliveryStatus.PENDING.value:
                        continue
                    counted.append(self._apply(delivery, outcome, now))
                    disabled += await self._judge_endpoint(session, endpoint, outcome, now)
        for outcome_name in counted:
            metrics.count_webhook_delivery(outcome_name)
        for _ in range(disabled):
            metrics.count_webhook_endpoint_disabled()

    def _apply(self, delivery: WebhookDelivery, outcome: Outcome, now: dt.datetime) -> str:
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        delivery.last_latency_ms = outcome.latency_ms
        if outcome.delivered:
            delivery.status = DeliveryStatus.DELIVERED.value
            delivery.delivered_at = now
            return "delivered"
        wait_s = backoff_s(delivery.attempts)
        if outcome.retry_after_s is not None:
            wait_s = max(wait_s, outcome.retry_after_s)
        next_attempt_at = now + dt.timedelta(seconds=wait_s)
        if next_attempt_at > delivery.created_at + self._window:
            delivery.status = DeliveryStatus.FAILED.value
            return "failed"
        delivery.next_attempt_at = next_attempt_at
        return "retrying"

    async def _judge_endpoint(
        self, session: AsyncSession, endpoint: WebhookEndpoint, outcome: Outcome, now: dt.datetime
    ) -> bool:
        """Note a success or failure; True when this failure disables the endpoint."""
        if outcome.delivered:
            endpoint.failing_since = None
            endpoint.last_success_at = now
            return False
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        failing_throughout = endpoint.failing_since <= now - self._window
        if failing_throughout and endpoint.status == EndpointStatus.ACTIVE.value:
            endpoint.status = EndpointStatus.DISABLED.value
            endpoint.disabled_at = now
            endpoint.updated_at = now
            await audit.record(
                session,
                actor=WORKER_ACTOR,
                action="webhook.disable",
                target_type="webhook",
                target_id=str(endpoint.id),
                at=now,
                detail={
                    "failing_since": endpoint.failing_since.isoformat(),
                    "last_error": outcome.error,
                },
            )
            logger.warning("webhook endpoint %s disabled: failing since %s",
                           endpoint.id, endpoint.failing_since.isoformat())  # fmt: skip
            return True
        return False

    async def _queue_state(self) -> repository.QueueState:
        async with self._database.engine.connect() as connection:
            return await repository.queue_state(connection)

    def _observe_queue(self, state: repository.QueueState) -> None:
        if not self._settings.metrics_enabled:
            return
        oldest_s = (self._clock.now() - state.oldest_at).total_seconds() if state.oldest_at else 0.0
        metrics.set_webhook_queue(state.depth, max(oldest_s, 0.0))


async def _read_some(response: httpx.Response) -> None:
    """Read at most RESPONSE_READ_LIMIT bytes of the answer, and drop them."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= RESPONSE_READ_LIMIT:
            break
