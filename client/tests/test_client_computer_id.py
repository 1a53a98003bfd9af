"""The computer ID: stable, per product, blind to interface order, and overridable."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from callhome_client import (
    ComputerIdUnavailable,
    ConfigurationError,
    HardwareFacts,
    NetworkInterface,
    gather_hardware_facts,
    hardware_computer_id,
    persistent_computer_id,
)
from callhome_client._computer_id import parse_ioreg_platform_uuid

MACHINE_ID = "4c4c4544004b4d10803ac4c04f4e3232"
INTERFACES = [
    NetworkInterface("wlan0", "A4:5E:60:D1:22:07"),
    NetworkInterface("eth0", "3c:7c:3f:10:aa:01"),
    NetworkInterface("docker0", "02:42:ac:11:00:02", virtual=True),
    NetworkInterface("veth9", "0e:11:22:33:44:55"),  # locally administered
    NetworkInterface("lo", "00:00:00:00:00:00", virtual=True),
    NetworkInterface("usb0", "00:00:00:00:00:00"),
]


def _fake_root(tmp_path: Path, *, product_uuid_mode: int = 0o444) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text(MACHINE_ID + "\n")
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text("A1B2C3D4-0000-1111-2222-333344445555\n")
    (dmi / "product_uuid").chmod(product_uuid_mode)
    (dmi / "board_serial").write_text("BOARD-SERIAL-1\n")
    (dmi / "board_serial").chmod(0o400)  # root-only, as on most distributions
    return tmp_path


def _computer_id(
    root: Path, interfaces: Iterable[NetworkInterface], product: str = "mailserver"
) -> str:
    return hardware_computer_id(product, gather_hardware_facts(root=root, interfaces=interfaces))


def test_the_id_is_stable_across_calls(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    first = _computer_id(root, INTERFACES)
    again = _computer_id(root, INTERFACES)

    assert first == again
    assert len(first) == 64 and int(first, 16) >= 0


def test_the_id_differs_per_product(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)

    assert _computer_id(root, INTERFACES) != _computer_id(root, INTERFACES, product="webfilter")


def test_the_id_does_not_depend_on_the_order_interfaces_are_listed_in(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    ids = {_computer_id(root, order) for order in itertools.permutations(INTERFACES)}

    assert len(ids) == 1


def test_the_primary_mac_is_the_lowest_burned_in_physical_one(tmp_path: Path) -> None:
    facts = gather_hardware_facts(root=tmp_path, interfaces=reversed(INTERFACES))

    assert facts.primary_mac == "3c:7c:3f:10:aa:01"


def test_a_new_virtual_interface_does_not_change_the_id(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    with_bridge = [*INTERFACES, NetworkInterface("br-1", "00:00:5e:00:53:01", virtual=True)]

    assert _computer_id(root, INTERFACES) == _computer_id(root, with_bridge)


def test_root_only_facts_are_left_out_so_root_and_users_get_one_id(tmp_path: Path) -> None:
    readable = gather_hardware_facts(root=_fake_root(tmp_path), interfaces=[])
    assert readable.product_uuid == "a1b2c3d4-0000-1111-2222-333344445555"
    assert readable.board_serial is None  # even when this test runs as root

    other = tmp_path / "other"
    other.mkdir()
    root_only = gather_hardware_facts(root=_fake_root(other, product_uuid_mode=0o400))
    assert root_only.product_uuid is None
    assert root_only.machine_id == MACHINE_ID


def test_the_raw_facts_stay_out_of_the_id_and_the_repr(tmp_path: Path) -> None:
    facts = gather_hardware_facts(root=_fake_root(tmp_path), interfaces=INTERFACES)
    computer_id = hardware_computer_id("mailserver", facts)

    assert MACHINE_ID not in computer_id
    assert MACHINE_ID not in repr(facts) and "3c:7c" not in repr(facts)
    assert "machine_id" in repr(facts)


def test_a_machine_without_facts_asks_for_the_products_own_id(tmp_path: Path) -> None:
    with pytest.raises(ComputerIdUnavailable, match="persistent_computer_id"):
        hardware_computer_id("mailserver", gather_hardware_facts(root=tmp_path, interfaces=[]))


def test_a_cpu_serial_counts_where_the_board_publishes_one(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("Hardware\t: BCM2835\nSerial\t\t: 10000000a3b4c5d6\n")

    facts = gather_hardware_facts(root=tmp_path, interfaces=[])

    assert facts.cpu_serial == "10000000a3b4c5d6"
    assert hardware_computer_id("mailserver", facts) != hardware_computer_id(
        "mailserver", HardwareFacts(cpu_serial="10000000a3b4c5d7")
    )


def test_the_macos_platform_uuid_is_read_from_ioreg_output() -> None:
    output = '  | {\n  |   "IOPlatformUUID" = "564D1C2A-9C4B-4E6A-8F3B-1A2B3C4D5E6F"\n  | }\n'

    assert parse_ioreg_platform_uuid(output) == "564d1c2a-9c4b-4e6a-8f3b-1a2b3c4d5e6f"
    assert parse_ioreg_platform_uuid("no such device") is None


def test_a_persistent_id_is_created_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "computer-id"

    created = persistent_computer_id(path)

    assert persistent_computer_id(path) == created
    assert persistent_computer_id(str(path)) == created
    assert len(created) == 64


def test_processes_racing_to_create_the_persistent_id_agree(tmp_path: Path) -> None:
    path = tmp_path / "computer-id"
    results: list[str] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        results.append(persistent_computer_id(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1
    assert os.listdir(tmp_path) == ["computer-id"]


def test_a_file_holding_something_else_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    path.write_text("[server]\nport = 25\n")

    with pytest.raises(ConfigurationError):
        persistent_computer_id(path)
    assert path.read_text() == "[server]\nport = 25\n"


def test_this_machine_gets_one_id_or_a_clear_request_for_the_products_own() -> None:
    try:
        first = hardware_computer_id("mailserver")
    except ComputerIdUnavailable:
        pytest.skip("this machine (a container?) has no hardware facts")
    assert hardware_computer_id("mailserver") == first
