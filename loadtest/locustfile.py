"""The fleet simulation: installs, a leaked key, support staff and a release rollout at once.

For watching the server under mixed load (its steered rhythm, reports opening, a
rollout spreading), not for throughput figures: bench.py measures those. Time is
compressed: with --time-scale 3600 an hour of the fleet's life passes in a second.

At the start it creates its own licences and a release through the staff API, so
it needs a staff token with every scope (`callhome init` prints one):

    CALLHOME_STAFF_TOKEN=chs_... locust -f loadtest/locustfile.py --headless \\
        -u 50 -r 10 -t 60s --host http://127.0.0.1:8000

See loadtest/README.md for how to run the server for it (trusted proxies, rate limits).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests
from callhome_client import CheckInRhythm
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner

logger = logging.getLogger("callhome.locust")

PRODUCT = "mail"
INSTALLED_VERSIONS = ("8.1.0", "8.2.1", "8.10.0")
# A share of check-ins come from a new PC: hardware replaced, the old one falls silent.
REPLACEMENT_CHANCE = 0.02
ROLLOUT_STEP_PERCENT = 10
# Simulated hours between two rollout steps, as release engineering would pace it.
ROLLOUT_STEP_HOURS = 12


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument(
        "--time-scale",
        type=float,
        env_var="CALLHOME_LOCUST_TIME_SCALE",
        default=3600.0,
        help="Simulated seconds per real second (3600: six hours between pings pass in 6 s)",
    )
    parser.add_argument(
        "--staff-token",
        env_var="CALLHOME_STAFF_TOKEN",
        default="",
        is_secret=True,
        help="A staff token with every scope (callhome init prints one)",
    )
    parser.add_argument(
        "--licences",
        type=int,
        env_var="CALLHOME_LOCUST_LICENCES",
        default=20,
        help="Licences the installs share (each allows 1 to 3 machines)",
    )


@dataclass(frozen=True)
class Licence:
    id: str
    key: str
    # The customer's office network: its machines call from addresses in one /24.
    network: str


@dataclass
class Simulation:
    """What the users share: the licences they run, the leaked key, the release rolling out."""

    time_scale: float
    staff_token: str
    licences: list[Licence]
    leaked: Licence
    release_id: str

    def real_seconds(self, simulated_s: float) -> float:
        return simulated_s / self.time_scale


simulation: Simulation | None = None


def shared() -> Simulation:
    if simulation is None:
        raise RuntimeError("the simulation is prepared when the test starts")
    return simulation


def random_network(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"


def staff_session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.hooks["response"] = [lambda response, *_, **__: response.raise_for_status()]
    return session


def create_licence(http: requests.Session, host: str, max_machines: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product": PRODUCT,
        "max_machines": max_machines,
        "max_users": 500,
        "entitlements": ["spam"],
        # Maintenance covers the release published during the run.
        "updates_until": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
    }
    document: dict[str, Any] = http.post(f"{host}/v1/admin/licences", json=body).json()
    return document


def publish_release(http: requests.Session, host: str) -> str:
    """A release above every installed version, offered to nobody yet."""
    body: dict[str, Any] = {
        "product": PRODUCT,
        "version": f"9.0.{int(time.time())}",
        "url": "https://downloads.example.test/mail-9.0.tar.gz",
        "sha256": secrets.token_hex(32),
        "size": 48_000_000,
        "rollout_percent": 0,
    }
    release_id: str = http.post(f"{host}/v1/admin/releases", json=body).json()["id"]
    return release_id


@events.test_start.add_listener
def prepare(environment: Environment, **kwargs: Any) -> None:
    global simulation
    if isinstance(environment.runner, MasterRunner):
        return  # the workers run the users, and each prepares its own fleet
    options = environment.parsed_options
    if options is None or not options.staff_token:
        raise SystemExit("a staff token is needed: --staff-token or CALLHOME_STAFF_TOKEN")
    if not environment.host:
        raise SystemExit("--host names the callhome server")
    host = environment.host.rstrip("/")
    rng = random.Random()
    http = staff_session(options.staff_token)
    licences = []
    for _ in range(options.licences):
        created = create_licence(http, host, max_machines=rng.randint(1, 3))
        licences.append(Licence(created["id"], created["key"], random_network(rng)))
    leaked = create_licence(http, host, max_machines=2)
    simulation = Simulation(
        time_scale=options.time_scale,
        staff_token=options.staff_token,
        licences=licences,
        leaked=Licence(leaked["id"], leaked["key"], random_network(rng)),
        release_id=publish_release(http, host),
    )
    logger.info("fleet of %d licences and a leaked key created", len(licences))


class Install(FastHttpUser):
    """One installation: calls home at the rhythm the server steers, as the SDK does."""

    weight = 10

    def on_start(self) -> None:
        self.licence = self.choose_licence()
        self.computer_id = secrets.token_hex(32)
        self.version = random.choice(INSTALLED_VERSIONS)
        self.rhythm = CheckInRhythm()
        # Installs start at any moment of the interval, never all together.
        self.wait_s = random.uniform(0, shared().real_seconds(6 * 3600))

    def choose_licence(self) -> Licence:
        return random.choice(shared().licences)

    def address(self) -> str:
        return f"{self.licence.network}.{random.randint(1, 254)}"

    def wait_time(self) -> float:
        return self.wait_s

    @task
    def call_home(self) -> None:
        if random.random() < REPLACEMENT_CHANCE:
            self.computer_id = secrets.token_hex(32)
        body = {
            "licence_key": self.licence.key,
            "product": PRODUCT,
            "version": self.version,
            "computer_id": self.computer_id,
            "user_count": random.randint(1, 450),
            "signatures": {"spam": random.randint(40000, 41000)},
            "nonce": secrets.token_urlsafe(24),
        }
        headers = {"X-Forwarded-For": self.address()}
        with self.client.post(
            "/v1/ping", json=body, headers=headers, catch_response=True
        ) as response:
            if response.status_code == 200:
                self.follow(response.json())
                return
            retry_after_s = float(response.headers.get("Retry-After") or 0)
            self.wait_s = shared().real_seconds(self.rhythm.after_failure(retry_after_s))
            response.failure(f"{response.status_code}: backing off")

    def follow(self, answer: dict[str, Any]) -> None:
        """Wait as the server says, and install an update it offers."""
        self.wait_s = shared().real_seconds(self.rhythm.after_success(answer["next_check_in"]))
        if answer["update"] is not None:
            self.version = answer["update"]["version"]


class LeakedKeyInstall(Install):
    """A machine running the leaked key: each somewhere else on the internet."""

    weight = 3

    def on_start(self) -> None:
        super().on_start()
        self.licence = shared().leaked
        self.network = random_network(random.Random())

    def address(self) -> str:
        return f"{self.network}.{random.randint(1, 254)}"


class Staff(FastHttpUser):
    """Support staff reading abuse reports and licences, at a person's pace."""

    fixed_count = 1
    wait_time = between(2, 5)

    def on_start(self) -> None:
        self.authorization = {"Authorization": f"Bearer {shared().staff_token}"}

    @task(3)
    def open_reports(self) -> None:
        page = self.client.get(
            "/v1/admin/abuse-reports?status=open&sort=severity", headers=self.authorization
        ).json()
        for report in page.get("items", [])[:3]:
            self.client.get(
                f"/v1/admin/abuse-reports/{report['id']}",
                headers=self.authorization,
                name="/v1/admin/abuse-reports/{id}",
            )

    @task(1)
    def recent_reports(self) -> None:
        self.client.get(
            "/v1/admin/abuse-reports?sort=last_seen&kind=machine_churn",
            headers=self.authorization,
        )

    @task(2)
    def licence_detail(self) -> None:
        licence = random.choice([*shared().licences, shared().leaked])
        self.client.get(
            f"/v1/admin/licences/{licence.id}",
            headers=self.authorization,
            name="/v1/admin/licences/{id}",
        )


class ReleaseEngineer(FastHttpUser):
    """Rolls the release out a step at a time, paced in simulated hours."""

    fixed_count = 1

    def on_start(self) -> None:
        self.rollout_percent = 0

    def wait_time(self) -> float:
        return shared().real_seconds(ROLLOUT_STEP_HOURS * 3600)

    @task
    def widen_rollout(self) -> None:
        if self.rollout_percent >= 100:
            return
        self.rollout_percent = min(100, self.rollout_percent + ROLLOUT_STEP_PERCENT)
        self.client.patch(
            f"/v1/admin/releases/{shared().release_id}",
            json={"rollout_percent": self.rollout_percent},
            headers={"Authorization": f"Bearer {shared().staff_token}"},
            name="/v1/admin/releases/{id}",
        )
