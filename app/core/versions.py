"""What counts as a version on the wire: PEP 440, or Semantic Versioning 2.0.0."""

from __future__ import annotations

import re
from typing import Final

from packaging.version import InvalidVersion, Version

# semver.org's own expression for a SemVer 2.0.0 version.
SEMVER: Final = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)


def is_version(text: str) -> bool:
    """True for a PEP 440 or SemVer version: never a host name, user or path that an
    install could send as its version. The SDK's `check_version` holds the same rule."""
    if SEMVER.fullmatch(text):
        return True
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True
