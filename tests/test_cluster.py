"""Three nodes behind HAProxy on one PostgreSQL and Redis, every scenario through the load
balancer: seats, suspensions, shared rate limits, a node killed, a rolling restart, jobs."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from callhome_client import Client, Verdict
from callhome_client._scheduler import CheckInRhythm

from loadtest.cluster.cluster import Cluster, require_haproxy
from tests.support.pings import JSON_HEADERS
from tests.support.stores import postgresql_url, running_in_ci

# `make cluster-test` runs these with a longer load (CALLHOME_CLUSTER_LOAD_S seconds).
LOAD_S = float(os.environ.get("CALLHOME_CLUSTER_LOAD_S", "4"))
LICENCE_LIMIT_PER_HOUR = 30
JOB_PERIOD_S = 1.0
# deploy/haproxy.cfg: checks every 1 s, every 250 ms after a failure, down after 2 failures.
DOWN_WITHIN_S = 1.0 + 2 * 0.25


def _cluster_or_skip() -> str:
    url = postgresql_url()
    try:
        require_haproxy()
    except RuntimeError:
        if running_in_ci():
            raise
        pytest.skip("haproxy is not installed (`make haproxy`)")
    if url is None:
        if running_in_ci():
            raise RuntimeError("CALLHOME_TEST_DATABASE_URL is needed in CI")
        pytest.skip("the cluster runs on PostgreSQL (CALLHOME_TEST_DATABASE_URL)")
    return url


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    url = _cluster_or_skip()
    admin_dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    running = Cluster(
        database=f"callhome_cluster_{os.getpid()}",
        admin_dsn=admin_dsn,
        env_overrides={
            "CALLHOME_RATE_LIMIT_LICENCE_PER_HOUR": str(LICENCE_LIMIT_PER_HOUR),
            # Licences under load are out of reach; a key that matches no licence gets
            # the floor, LICENCE_LIMIT_PER_HOUR, which the rate-limit scenario tests.
            "CALLHOME_RATE_LIMIT_MACHINE_PER_HOUR": str(10**6),
            # Every test ping comes from 127.0.0.1: the network limit would count them all.
            "CALLHOME_RATE_LIMIT_NETWORK_PER_HOUR": "0",
            "CALLHOME_MAINTENANCE_INTERVAL_S": str(JOB_PERIOD_S),
            "CALLHOME_DETECT_INTERVAL_S": str(JOB_PERIOD_S),
        },
    )
    try:
        yield running.start()
    finally:
        running.stop()
        running.drop_database()


@dataclass
class Staff:
    cluster: Cluster
    http: httpx.Client = field(init=False)
    public_key: str = field(init=False)

    def __post_init__(self) -> None:
        token = self.cluster.staff_token()
        self.http = httpx.Client(
            base_url=self.cluster.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.public_key = self.http.get("/v1/keys").json()["keys"][0]["public_key"]

    def licence(self, **fields: Any) -> dict[str, Any]:
        created = self.http.post("/v1/admin/licences", json={"product": "mail", **fields})
        assert created.status_code == 201, created.text
        licence: dict[str, Any] = created.json()
        return licence

    def install(self, key: str, machine: str) -> Client:
        """An install embedding the SDK, talking to the load balancer."""
        return Client(
            self.cluster.url,
            key,
            "mail",
            "8.2.1",
            [self.public_key],
            computer_id=f"{machine:0>16}",
            timeout=10,
        )


@pytest.fixture(scope="module")
def staff(cluster: Cluster) -> Staff:
    return Staff(cluster)


def _ping(http: httpx.Client, key: str, machine: str) -> httpx.Response:
    body = {
        "licence_key": key,
        "product": "mail",
        "version": "8.2.1",
        "computer_id": f"{machine:0>16}",
        "user_count": 1,
    }
    return http.post("/v1/ping", content=json.dumps(body), headers=JSON_HEADERS)


def _responses_by_node(cluster: Cluster) -> dict[str, int]:
    return {name: int(row["hrsp_2xx"]) for name, row in cluster.server_stats().items()}


def test_twenty_newcomers_racing_for_three_seats_get_exactly_three(
    cluster: Cluster, staff: Staff
) -> None:
    licence = staff.licence(max_machines=3, overage="deny")
    before = _responses_by_node(cluster)
    barrier = threading.Barrier(20)

    def newcomer(n: int) -> str:
        # A connection each, so HAProxy spreads them over the nodes.
        with httpx.Client(base_url=cluster.url, timeout=30) as http:
            barrier.wait()
            answer = _ping(http, licence["key"], f"racer{n}")
        assert answer.status_code == 200, answer.text
        seat: str = answer.json()["licence"]["machines"]["seat"]
        return seat

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        seats = list(pool.map(newcomer, range(20)))
    assert seats.count("granted") == 3
    assert seats.count("denied") == 17
    after = _responses_by_node(cluster)
    assert all(after[name] > before[name] for name in after), (before, after)
    detail = staff.http.get(f"/v1/admin/licences/{licence['id']}").json()
    assert sum(machine["seat"] == "granted" for machine in detail["machines"]) == 3


def test_a_suspension_through_one_node_reaches_the_others_within_a_second(
    cluster: Cluster, staff: Staff
) -> None:
    licence = staff.licence(max_machines=5)
    # Every node caches the licence first: the change has to reach warm caches.
    for node in cluster.nodes.values():
        with httpx.Client(base_url=node.url, timeout=10) as http:
            assert _ping(http, licence["key"], "steady").json()["licence"]["status"] == "valid"
    changed = staff.http.patch(f"/v1/admin/licences/{licence['id']}", json={"status": "suspended"})
    assert changed.status_code == 200, changed.text
    changed_at = time.monotonic()

    def first_suspended_verdict(url: str) -> float:
        """When, after the change, a ping was sent that came back suspended."""
        with httpx.Client(base_url=url, timeout=10) as http:
            while (sent_at := time.monotonic()) - changed_at < 5:
                if _ping(http, licence["key"], "steady").json()["licence"]["status"] == "suspended":
                    return sent_at - changed_at
                time.sleep(0.01)
        return float("inf")

    with concurrent.futures.ThreadPoolExecutor(len(cluster.nodes)) as pool:
        urls = [node.url for node in cluster.nodes.values()]
        seen_after = dict(zip(cluster.nodes, pool.map(first_suspended_verdict, urls), strict=True))
    assert max(seen_after.values()) <= 1.0, seen_after
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        assert _ping(http, licence["key"], "steady").json()["licence"]["status"] == "suspended"


def test_the_licence_rate_limit_holds_across_nodes(cluster: Cluster) -> None:
    """docs/deploy.md: shared through Redis, within about one sync interval's traffic.

    A key that matches no licence, as a key guesser sends, is held to the floor."""
    guessed_key = "GUESSED-KEY-0001"
    rate_per_s = 20
    sent = 3 * LICENCE_LIMIT_PER_HOUR
    statuses: list[int] = []
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        started = time.monotonic()
        for n in range(sent):
            time.sleep(max(0.0, started + n / rate_per_s - time.monotonic()))
            statuses.append(_ping(http, guessed_key, "one").status_code)
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}
    # Each node alone would admit the limit: 3 x 30 = all 90.
    assert LICENCE_LIMIT_PER_HOUR <= admitted <= LICENCE_LIMIT_PER_HOUR + rate_per_s, admitted


@dataclass
class Load:
    """Installs checking in through the load balancer with the SDK, back to back."""

    staff: Staff
    installs: int = 6
    acknowledged: int = 0
    fell_back: int = 0
    retries: int = 0
    unanswered: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        licence = self.staff.licence(max_machines=self.installs)
        for n in range(self.installs):
            thread = threading.Thread(target=self._install, args=(licence["key"], f"load{n}"))
            thread.start()
            self._threads.append(thread)
        return self

    def _install(self, key: str, machine: str) -> None:
        rhythm = CheckInRhythm()
        with self.staff.install(key, machine) as client:
            while not self._stop.is_set():
                verdict = self._check_in_until_answered(client, rhythm, machine)
                if verdict is None:
                    return
                time.sleep(0.01)

    def _check_in_until_answered(
        self, client: Client, rhythm: CheckInRhythm, machine: str
    ) -> Verdict | None:
        """The SDK's rules: a failed check-in keeps the cached verdict and tries again
        after a backoff (here a thousandth of the real one)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            verdict = client.check_in(user_count=1)
            if not verdict.cached:
                with self._lock:
                    self.acknowledged += 1
                return verdict
            with self._lock:
                self.fell_back += 1
            time.sleep(rhythm.after_failure() / 1000)
        with self._lock:
            self.unanswered.append(machine)
        return None

    def wait_for(self, acknowledged: int) -> None:
        Cluster.wait_until(lambda: self.acknowledged >= acknowledged, timeout_s=60)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


async def _stored_pings(cluster: Cluster) -> int:
    connection = await asyncpg.connect(cluster.asyncpg_dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM pings"))
    finally:
        await connection.close()


def _run(coroutine: Any) -> Any:
    import asyncio

    return asyncio.run(coroutine)


def test_kill_9_of_a_node_under_load_loses_no_acknowledged_ping(
    cluster: Cluster, staff: Staff, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callhome_client")
    stored_before = _run(_stored_pings(cluster))
    load = Load(staff).start()
    try:
        load.wait_for(50)
        cluster.kill_node("node2")
        killed_at = time.monotonic()
        cluster.wait_until(lambda: cluster.server_states()["node2"].startswith("DOWN"), 10)
        down_after_s = time.monotonic() - killed_at
        time.sleep(LOAD_S)
    finally:
        load.stop()
    acknowledged = load.acknowledged
    cluster.start_node("node2")
    cluster.wait_until(lambda: cluster.server_states()["node2"] == "UP")
    assert load.unanswered == []
    assert down_after_s <= DOWN_WITHIN_S, down_after_s
    # HAProxy sent the dead node's requests again to the others: nobody noticed.
    assert load.fell_back == 0, caplog.messages
    assert _run(_stored_pings(cluster)) - stored_before >= acknowledged


def test_a_rolling_restart_under_load_fails_no_check_in(
    cluster: Cluster, staff: Staff, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callhome_client")
    stored_before = _run(_stored_pings(cluster))
    load = Load(staff).start()
    try:
        load.wait_for(30)
        for name in cluster.nodes:
            assert cluster.stop_node(name) in (0, -15)
            cluster.start_node(name)
            cluster.wait_until(lambda name=name: cluster.server_states()[name] == "UP")
            time.sleep(LOAD_S / len(cluster.nodes))
    finally:
        load.stop()
    assert load.unanswered == []
    assert load.fell_back == 0, caplog.messages
    assert _run(_stored_pings(cluster)) - stored_before >= load.acknowledged


def _runs(cluster: Cluster, line: Callable[[dict[str, Any]], bool]) -> list[str]:
    """When each node logged a run of a job, from the JSON lines of every node's log."""
    times = []
    for name in cluster.nodes:
        for text in cluster.node_log(name).splitlines():
            if not text.startswith("{"):
                continue
            record = json.loads(text)
            if line(record):
                times.append(record["time"])
    return sorted(times)


def test_background_jobs_run_once_per_period_across_the_nodes(cluster: Cluster) -> None:
    def maintenance(record: dict[str, Any]) -> bool:
        return bool(re.match(r"maintenance: ", record["message"]))

    def sweep(record: dict[str, Any]) -> bool:
        return bool(record["message"].startswith("detection sweep: "))

    window_s = max(LOAD_S, 5.0)
    before = {job: len(_runs(cluster, job)) for job in (maintenance, sweep)}
    time.sleep(window_s)
    for job in (maintenance, sweep):
        runs = len(_runs(cluster, job)) - before[job]
        # One run per period across three nodes, give or take a timer's drift;
        # three nodes each running it would make three times as many.
        assert window_s / JOB_PERIOD_S - 2 <= runs <= window_s / (0.9 * JOB_PERIOD_S) + 1, runs
