"""The computer ID: a product-salted SHA-256 of stable hardware facts, which never leave here."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import secrets
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._exceptions import ComputerIdUnavailable, ConfigurationError
from ._files import write_atomically
from ._request import check_computer_id, check_product

_ID_DOMAIN = b"callhome-computer-id/1"
_MAC = re.compile(r"[0-9a-f]{2}([:-][0-9a-f]{2}){5}")
_IOREG_PLATFORM_UUID = re.compile(r'"IOPlatformUUID"\s*=\s*"([^"]+)"')
_CPUINFO_SERIAL = re.compile(r"^serial\s*:\s*(\S+)\s*$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class NetworkInterface:
    """One network interface as the platform lists it."""

    name: str
    mac: str
    virtual: bool = False


@dataclass(frozen=True)
class HardwareFacts:
    """The facts the computer ID is derived from; absent ones are None."""

    machine_id: str | None = None
    primary_mac: str | None = None
    product_uuid: str | None = None
    board_serial: str | None = None
    cpu_serial: str | None = None
    platform_uuid: str | None = None
    """Windows MachineGuid or macOS IOPlatformUUID."""

    def present(self) -> list[tuple[str, str]]:
        """(name, value) of each fact that was found, in a fixed order."""
        pairs = ((fact.name, getattr(self, fact.name)) for fact in dataclasses.fields(self))
        return [(name, value) for name, value in pairs if value]

    def __repr__(self) -> str:
        # the values are the raw facts, which must never reach a log line
        return f"HardwareFacts(present={[name for name, _ in self.present()]})"


def hardware_computer_id(product: str, facts: HardwareFacts | None = None) -> str:
    """SHA-256 hex of the hardware facts salted with the product name.

    Raises ComputerIdUnavailable when no fact is found (typical in containers): the
    product must then pass its own persistent ID, see persistent_computer_id().
    """
    check_product(product)
    present = (facts or gather_hardware_facts()).present()
    if not present:
        raise ComputerIdUnavailable(
            "no hardware facts found (a container?): pass the product's own persistent "
            "computer ID, e.g. persistent_computer_id(<file in the data volume>)"
        )
    digest = hashlib.sha256(_ID_DOMAIN + b"\0" + product.encode("ascii") + b"\0")
    for name, value in present:
        digest.update(f"{name}={value}\0".encode())
    return digest.hexdigest()


def persistent_computer_id(path: str | os.PathLike[str]) -> str:
    """A random computer ID created once in path and read back from it ever after.

    For containers, whose hardware facts are missing or change on every start: keep
    path in a persistent volume. A file holding anything but an ID is left alone.
    """
    path = Path(path)
    try:
        stored = path.read_bytes().decode("ascii", "replace").strip()
    except FileNotFoundError:
        fresh = secrets.token_hex(32)
        created = write_atomically(path, f"{fresh}\n".encode("ascii"), overwrite=False)
        # another process may have created the file first: then its ID is the one
        return fresh if created else persistent_computer_id(path)
    try:
        check_computer_id(stored)
    except ConfigurationError:
        raise ConfigurationError(f"{path} exists but holds no computer ID") from None
    return stored


def gather_hardware_facts(
    *, root: str | os.PathLike[str] = "/", interfaces: Iterable[NetworkInterface] | None = None
) -> HardwareFacts:
    """Read the hardware facts of this machine (root and interfaces are for tests)."""
    root = Path(root)
    if interfaces is None:
        interfaces = list_network_interfaces(root)
    dmi = root / "sys/class/dmi/id"
    return HardwareFacts(
        machine_id=_world_readable(root / "etc/machine-id")
        or _world_readable(root / "var/lib/dbus/machine-id"),
        primary_mac=primary_mac(interfaces),
        product_uuid=_world_readable(dmi / "product_uuid"),
        board_serial=_world_readable(dmi / "board_serial"),
        cpu_serial=_cpu_serial(root),
        platform_uuid=_windows_machine_guid() or _macos_platform_uuid(),
    )


def primary_mac(interfaces: Iterable[NetworkInterface]) -> str | None:
    """The lowest burned-in MAC of a physical interface, whatever order they are listed in."""
    macs = (_normalise_mac(interface.mac) for interface in interfaces if not interface.virtual)
    burned_in = sorted(mac for mac in macs if mac is not None and _is_burned_in(mac))
    return burned_in[0] if burned_in else None


def list_network_interfaces(root: Path = Path("/")) -> list[NetworkInterface]:
    """The machine's interfaces: all of them on Linux, the one uuid.getnode() finds elsewhere."""
    if sys.platform.startswith("linux"):
        net = root / "sys/class/net"
        if not net.is_dir():
            return []
        return [
            NetworkInterface(
                name=entry.name,
                mac=_world_readable(entry / "address") or "",
                # bridges, veth pairs and tunnels live under /sys/devices/virtual
                virtual="/virtual/" in os.path.realpath(entry),
            )
            for entry in net.iterdir()
        ]
    node = uuid.getnode()
    # getnode() makes up a random MAC, multicast bit set, when it finds no real one
    if node >> 40 & 1:
        return []
    return [NetworkInterface(name="primary", mac=f"{node:012x}")]


def _normalise_mac(mac: str) -> str | None:
    mac = mac.strip().lower()
    if len(mac) == 12 and all(char in "0123456789abcdef" for char in mac):
        mac = ":".join(mac[index : index + 2] for index in range(0, 12, 2))
    return mac.replace("-", ":") if _MAC.fullmatch(mac) else None


def _is_burned_in(mac: str) -> bool:
    """Not all zero, not multicast, not locally administered (random or assigned by software)."""
    first_octet = int(mac[:2], 16)
    return mac != "00:00:00:00:00:00" and not first_octet & 0b11


def _world_readable(path: Path) -> str | None:
    """The stripped, lowercased text of a file every user may read, else None.

    Root-only files (product_uuid and board_serial on most distributions) are skipped even
    when this process could read them, so the ID is the same for root and other users.
    """
    try:
        if not path.stat().st_mode & stat.S_IROTH:
            return None
        text = path.read_bytes().decode("utf-8", "replace").strip().lower()
    except OSError:
        return None
    return text or None


def _cpu_serial(root: Path) -> str | None:
    """The CPU serial number that some ARM boards publish in /proc/cpuinfo."""
    match = _CPUINFO_SERIAL.search(_world_readable(root / "proc/cpuinfo") or "")
    serial = match.group(1) if match else ""
    return None if serial.strip("0") == "" else serial


def _windows_machine_guid() -> str | None:
    if sys.platform != "win32":
        return None
    import winreg

    try:
        with winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE,
            r"SOFTWARE\Microsoft\Cryptography",
            0,
            winreg.KEY_READ | winreg.KEY_WOW64_64KEY,
        ) as key:
            value, _ = winreg.QueryValueEx(key, "MachineGuid")
    except OSError:
        return None
    return str(value).strip().lower() or None


def _macos_platform_uuid() -> str | None:
    if sys.platform != "darwin":
        return None
    try:
        completed = subprocess.run(
            ["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_ioreg_platform_uuid(completed.stdout)


def parse_ioreg_platform_uuid(ioreg_output: str) -> str | None:
    """The IOPlatformUUID in the output of `ioreg -rd1 -c IOPlatformExpertDevice`."""
    match = _IOREG_PLATFORM_UUID.search(ioreg_output)
    return match.group(1).lower() if match else None
