"""`callhome webhooks`: the staff API's twin adds, lists, tests, rotates and removes endpoints
and reads their delivery log, on both stores, against a real receiver."""

from __future__ import annotations

import uuid

import pytest

from app.core.clock import SystemClock
from app.core.database import Database
from app.events.delivery import WebhookWorker
from tests.support.cli import callhome, callhome_json, invoke
from tests.support.receiver import Receiver
from tests.support.stores import Store
from tests.support.webhooks import webhook_settings

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def deliver(store: Store) -> None:
    """One round of a delivery worker of the test's own against the same store."""
    settings = webhook_settings(store)
    database = Database(settings)
    worker = WebhookWorker(database, settings, SystemClock())
    try:
        await worker.run_once()
    finally:
        await worker.stop()
        await database.dispose()


async def test_the_webhooks_commands_manage_an_endpoint_end_to_end(
    store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLHOME_WEBHOOK_ALLOW_HTTP", "true")
    added = await callhome_json(
        store,
        "webhooks", "add", "--url", receiver.url,
        "--event", "licence.created", "--event", "report.opened", "--ordered",
    )  # fmt: skip
    endpoint_id = added["id"]
    assert added["secret"].startswith("whsec_") and added["status"] == "active"
    assert (added["events"], added["ordered"]) == (["licence.created", "report.opened"], True)
    human = await callhome(
        store, "webhooks", "add", "--url", receiver.url, "--event", "licence.expiring"
    )
    assert "secret: whsec_" in human and "licence.expiring" in human

    listed = await callhome_json(store, "webhooks", "list")
    assert [item["events"] for item in listed["items"]] == [added["events"], ["licence.expiring"]]
    assert listed["items"][0]["id"] == endpoint_id
    assert all("secret" not in item for item in listed["items"])
    lines = (await callhome(store, "webhooks", "list")).splitlines()
    assert lines[0].startswith(f"{endpoint_id}  active") and "ordered" in lines[0]

    receiver.secrets = [added["secret"]]
    queued = await callhome_json(store, "webhooks", "test", endpoint_id)
    await deliver(store)
    (first,) = receiver.received
    assert first.document["type"] == "webhook.test"
    assert first.document["data"] == {"endpoint_id": endpoint_id}
    assert first.message_id == "evt_" + uuid.UUID(queued["event_id"]).hex

    log = await callhome_json(store, "webhooks", "deliveries", endpoint_id)
    (entry,) = log["items"]
    assert (entry["event_type"], entry["status"], entry["attempts"]) == (
        "webhook.test",
        "delivered",
        1,
    )
    assert entry["last_status_code"] == 200 and entry["last_latency_ms"] is not None
    assert "body" not in str(log) and "nono" not in str(log)
    human_log = await callhome(store, "webhooks", "deliveries", endpoint_id)
    assert "webhook.test" in human_log and "delivered" in human_log and "last 200" in human_log

    rotated = await callhome_json(store, "webhooks", "rotate-secret", endpoint_id)
    assert rotated["secret"] != added["secret"] and rotated["previous_secret_until"]
    receiver.secrets = [rotated["secret"]]
    await callhome_json(store, "webhooks", "test", endpoint_id)
    await deliver(store)
    assert len(receiver.received) == 2 and receiver.forged == []
    offered = receiver.received[1].headers["webhook-signature"]
    assert offered.count("v1,") == 2  # the old secret signs too during the overlap

    enabled = await callhome_json(store, "webhooks", "enable", endpoint_id)
    assert enabled["status"] == "active"
    removed = await callhome_json(store, "webhooks", "remove", endpoint_id)
    assert removed == {"id": endpoint_id, "removed": True}
    remaining = await callhome_json(store, "webhooks", "list")
    assert endpoint_id not in [item["id"] for item in remaining["items"]]

    audit = await callhome_json(store, "audit", "--actor", "cli")
    actions = [item["action"] for item in audit["items"]]
    for action in ("webhook.add", "webhook.test", "webhook.rotate_secret", "webhook.remove"):
        assert action in actions


async def test_the_webhooks_commands_refuse_bad_input_and_change_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLHOME_WEBHOOK_ALLOW_HTTP", "true")
    unknown = str(uuid.uuid4())
    refusals = [
        (["add", "--url", "https://169.254.169.254/latest", "--event", "licence.created"], 1),
        (["add", "--url", "https://10.1.2.3/hook", "--event", "licence.created"], 1),
        (["add", "--url", "ftp://example.com/hook", "--event", "licence.created"], 1),
        (["add", "--url", "https://example.com/hook", "--event", "licence.stolen"], 2),
        (["add", "--url", "https://example.com/hook", "--event", "webhook.test"], 1),
        (["remove", unknown], 1),
        (["rotate-secret", unknown], 1),
        (["test", unknown], 1),
        (["deliveries", unknown], 1),
        (["enable", unknown], 1),
        (["remove", "not-an-id"], 2),
        (["deliveries", str(uuid.uuid4()), "--cursor", "zz"], 1),
    ]
    for args, code in refusals:
        result = await invoke(store, "webhooks", *args)
        assert result.exit_code == code, (args, result.output)
        if code == 1:
            assert result.output.startswith("error: "), args
            assert "Traceback" not in result.output
    assert (await callhome_json(store, "webhooks", "list"))["items"] == []
    assert "no webhook endpoints" in await callhome(store, "webhooks", "list")
