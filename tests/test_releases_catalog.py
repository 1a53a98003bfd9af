"""The in-memory planner: versions, channels, stepping stones, maintenance, rollouts, feeds."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from app.licences.cache import LicenceSnapshot
from app.licences.models import LicenceStatus
from app.releases.catalog import Catalog, FeedEntry, ReleaseEntry, rollout_bucket
from app.releases.models import FeedDelta, FeedVersion, Release

DAY = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def release(version: str, **fields: Any) -> ReleaseEntry:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "product": "mail",
        "channel": "stable",
        "version": version,
        "published_at": DAY,
        "url": f"https://dl.example.com/mail-{version}.tar.gz",
        "sha256": "a" * 64,
        "size": 1000,
        "notes_url": None,
        "critical": False,
        "min_from_version": None,
        "rollout_percent": 100,
        "yanked_at": None,
    }
    values.update(fields)
    return ReleaseEntry.of(Release(**values))


def feed_set(
    version: int,
    *,
    feed: str = "spam",
    deltas: tuple[int, ...] = (),
    size: int = 500,
    **fields: Any,
) -> FeedEntry:
    return FeedEntry.of(
        FeedVersion(
            feed=feed,
            version=version,
            url=f"https://dl.example.com/{feed}-{version}",
            sha256="b" * 64,
            size=size,
            published_at=DAY,
            deltas=[
                FeedDelta(
                    feed=feed,
                    version=version,
                    from_version=origin,
                    url=f"https://dl.example.com/{feed}-{origin}-{version}",
                    sha256="c" * 64,
                    size=50,
                )
                for origin in deltas
            ],
            **fields,
        )
    )


def licence(**fields: Any) -> LicenceSnapshot:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "product": "mail",
        "status": LicenceStatus.ACTIVE,
        "expires_at": None,
        "max_machines": 1,
        "max_users": None,
        "overage": "report",
        "activity_window": dt.timedelta(days=7),
        "entitlements": frozenset({"spam"}),
        "updates_until": None,
        "trial_days": None,
        "grace": None,
        "floating": False,
    }
    values.update(fields)
    return LicenceSnapshot(**values)


async def _nothing() -> tuple[list[ReleaseEntry], list[FeedEntry]]:
    return [], []


def catalog_of(*entries: ReleaseEntry | FeedEntry) -> Catalog:
    catalog = Catalog(_nothing, refresh_interval_s=None)
    for entry in entries:
        catalog.apply(entry)
    return catalog


def offered(
    catalog: Catalog, installed: str, *, machine: str = "m-1", **licence_fields: Any
) -> str | None:
    update = catalog.update_for(licence(**licence_fields), "stable", installed, machine)
    return None if update is None else str(update["version"])


versions = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)),
    min_size=1,
    max_size=12,
    unique=True,
).map(lambda parts: [".".join(map(str, part)) for part in parts])


@given(versions)
def test_the_newest_release_wins_compared_as_versions(published: list[str]) -> None:
    catalog = catalog_of(*(release(version) for version in published))
    newest = max(published, key=Version)
    assert offered(catalog, "0.0.0a1") == newest
    assert offered(catalog, newest) is None


def test_versions_compare_as_versions_not_strings() -> None:
    catalog = catalog_of(release("8.9"), release("8.10"))
    assert offered(catalog, "8.2.1") == "8.10"
    assert offered(catalog, "8.10") is None


def test_never_a_downgrade() -> None:
    catalog = catalog_of(release("8.1"), release("8.2"))
    assert offered(catalog, "9.0") is None
    assert offered(catalog, "8.2") is None
    assert offered(catalog, "8.1.5") == "8.2"


def test_unparsable_installed_version_gets_nothing() -> None:
    assert offered(catalog_of(release("8.1")), "not-a-version") is None


def test_channels_are_separate_tracks() -> None:
    catalog = catalog_of(release("8.1"), release("9.0b1", channel="beta"))
    assert offered(catalog, "8.0") == "8.1"
    beta = catalog.update_for(licence(), "beta", "8.0", "m-1")
    assert beta is not None and beta["version"] == "9.0b1"
    assert catalog.update_for(licence(), "nightly", "8.0", "m-1") is None
    assert catalog.update_for(licence(product="fax"), "stable", "8.0", "m-1") is None


def test_stepping_stones() -> None:
    catalog = catalog_of(
        release("7.0"),
        release("8.0", min_from_version="7.0"),
        release("9.0", min_from_version="8.0"),
    )
    assert offered(catalog, "6.5") == "7.0"
    assert offered(catalog, "7.2") == "8.0"
    assert offered(catalog, "8.0") == "9.0"
    assert offered(catalog, "8.5") == "9.0"


def test_maintenance_covers_releases_up_to_its_last_day() -> None:
    catalog = catalog_of(release("8.1", published_at=DAY), release("8.2", published_at=DAY))
    assert offered(catalog, "8.0", updates_until=DAY.date()) == "8.2"
    assert offered(catalog, "8.0", updates_until=DAY.date() - dt.timedelta(days=1)) is None
    assert offered(catalog, "8.0", updates_until=None) == "8.2"
    later = catalog_of(
        release("8.1", published_at=DAY - dt.timedelta(days=30)),
        release("8.2", published_at=DAY + dt.timedelta(days=1)),
    )
    assert offered(later, "8.0", updates_until=DAY.date()) == "8.1"


def test_a_yanked_release_is_never_offered() -> None:
    good = release("8.1")
    bad = release("8.2", yanked_at=DAY)
    assert offered(catalog_of(good, bad), "8.0") == "8.1"
    assert offered(catalog_of(bad), "8.0") is None


def test_the_answer_has_the_contract_shape() -> None:
    update = catalog_of(release("8.1", critical=True, notes_url="https://n.example.com/8.1"))
    assert update.update_for(licence(), "stable", "8.0", "m-1") == {
        "version": "8.1",
        "url": "https://dl.example.com/mail-8.1.tar.gz",
        "sha256": "a" * 64,
        "size": 1000,
        "notes_url": "https://n.example.com/8.1",
        "critical": True,
    }


MACHINES = [f"{n:032x}" for n in range(10_000)]


def test_a_rollout_reaches_its_share_and_growing_keeps_every_machine() -> None:
    release_id = uuid.uuid4()
    buckets = [rollout_bucket(machine, release_id) for machine in MACHINES]
    at_30 = {machine for machine, bucket in zip(MACHINES, buckets, strict=True) if bucket < 30}
    at_60 = {machine for machine, bucket in zip(MACHINES, buckets, strict=True) if bucket < 60}
    assert abs(len(at_30) / len(MACHINES) - 0.30) < 0.02
    assert abs(len(at_60) / len(MACHINES) - 0.60) < 0.02
    assert at_30 <= at_60
    # Another release draws another sample.
    other = uuid.uuid4()
    assert {m for m in MACHINES if rollout_bucket(m, other) < 30} != at_30


def test_rollout_percent_through_the_planner() -> None:
    staged = release("8.2", rollout_percent=30)
    catalog = catalog_of(release("8.1"), staged)
    picks = [offered(catalog, "8.0", machine=machine) for machine in MACHINES[:2000]]
    assert abs(picks.count("8.2") / 2000 - 0.30) < 0.04
    assert set(picks) == {"8.1", "8.2"}  # outside the rollout: the newest complete one
    halted = catalog_of(release("8.2", rollout_percent=0))
    assert all(offered(halted, "8.0", machine=machine) is None for machine in MACHINES[:500])
    assert catalog.update_for(licence(), "stable", "8.0", None) == release("8.1").offer


def test_feeds_plan_a_delta_where_one_leads_from_the_installed_version() -> None:
    catalog = catalog_of(feed_set(100), feed_set(101, deltas=(100,)), feed_set(102, deltas=(101,)))
    plan = catalog.signature_sets_for(licence(), {"spam": 101}, "8.2")
    assert plan == {
        "spam": {
            "version": 102,
            "url": "https://dl.example.com/spam-102",
            "sha256": "b" * 64,
            "size": 500,
            "delta": {
                "from": 101,
                "url": "https://dl.example.com/spam-101-102",
                "sha256": "c" * 64,
                "size": 50,
            },
            "chain": [
                {
                    "from": 101,
                    "to": 102,
                    "url": "https://dl.example.com/spam-101-102",
                    "sha256": "c" * 64,
                    "size": 50,
                }
            ],
        }
    }
    full = catalog.signature_sets_for(licence(), {"spam": 99}, "8.2")
    assert full["spam"]["version"] == 102 and full["spam"]["delta"] is None
    assert full["spam"]["chain"] == []
    assert catalog.signature_sets_for(licence(), {"spam": 102}, "8.2") == {}
    assert catalog.signature_sets_for(licence(), {"spam": 999}, "8.2") == {}


def chain_of(catalog: Catalog, installed: int) -> list[tuple[int, int]]:
    offer = catalog.signature_sets_for(licence(), {"spam": installed}, "8.2")["spam"]
    return [(step["from"], step["to"]) for step in offer["chain"]]


def test_an_install_three_sets_behind_is_offered_the_chain_in_order() -> None:
    catalog = catalog_of(
        feed_set(41233),
        feed_set(41234, deltas=(41233,)),
        feed_set(41235, deltas=(41234,)),
        feed_set(41236, deltas=(41235,)),
    )
    assert chain_of(catalog, 41233) == [(41233, 41234), (41234, 41235), (41235, 41236)]
    offer = catalog.signature_sets_for(licence(), {"spam": 41233}, "8.2")["spam"]
    assert offer["version"] == 41236 and offer["delta"] is None
    assert [step["url"] for step in offer["chain"]] == [
        "https://dl.example.com/spam-41233-41234",
        "https://dl.example.com/spam-41234-41235",
        "https://dl.example.com/spam-41235-41236",
    ]
    assert chain_of(catalog, 41235) == [(41235, 41236)]


def test_the_cheapest_chain_wins_and_the_full_set_when_every_chain_costs_more() -> None:
    catalog = catalog_of(
        feed_set(1),
        feed_set(2, deltas=(1,)),
        feed_set(3, deltas=(1, 2)),  # 1 -> 3 directly: 50 bytes, not 100 through 2
        feed_set(4, deltas=(3,)),
    )
    assert chain_of(catalog, 1) == [(1, 3), (3, 4)]
    # ten 50-byte steps (500 bytes) cost more than the 450-byte full set; eight do not
    long_chain = [feed_set(10, size=450)] + [
        feed_set(version, deltas=(version - 1,), size=450) for version in range(11, 21)
    ]
    assert chain_of(catalog_of(*long_chain), 10) == []
    assert len(chain_of(catalog_of(*long_chain), 12)) == 8


def test_a_gap_in_the_chain_means_the_full_set() -> None:
    catalog = catalog_of(
        feed_set(1), feed_set(2, deltas=(1,)), feed_set(3), feed_set(4, deltas=(3,))
    )
    assert chain_of(catalog, 1) == []
    assert chain_of(catalog, 3) == [(3, 4)]


def test_feeds_need_the_entitlement() -> None:
    catalog = catalog_of(feed_set(5), feed_set(7, feed="antivirus"))
    reported = {"spam": 1, "antivirus": 1, "unknown-feed": 1}
    assert set(catalog.signature_sets_for(licence(), reported, "8.2")) == {"spam"}
    lapsed = licence(entitlements=frozenset())
    assert catalog.signature_sets_for(lapsed, reported, "8.2") == {}
    both = licence(entitlements=frozenset({"spam", "antivirus"}))
    assert set(catalog.signature_sets_for(both, reported, "8.2")) == {"spam", "antivirus"}
    assert catalog.signature_sets_for(both, None, "8.2") == {}


def test_a_product_too_old_gets_the_newest_set_it_can_load() -> None:
    catalog = catalog_of(
        feed_set(10),
        feed_set(11, min_product_version="8.0"),
        feed_set(12, min_product_version="9.0"),
    )

    def version_for(product_version: str) -> int | None:
        plan = catalog.signature_sets_for(licence(), {"spam": 9}, product_version)
        return plan["spam"]["version"] if plan else None

    assert version_for("9.1") == 12
    assert version_for("8.10") == 11
    assert version_for("7.0") == 10
    assert catalog.signature_sets_for(licence(), {"spam": 10}, "7.0") == {}
