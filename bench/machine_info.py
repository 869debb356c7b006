"""The machine a benchmark's figures come from (one helper for every bench): cores, memory,
platform, Python, the load when asked, and the versions of the packages the bench names."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def memory_gib() -> float | None:
    """MemTotal of /proc/meminfo in GiB (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        return None
    return None


def package_version(name: str) -> str | None:
    """The installed distribution's version, None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def host(*packages: str, **extra: Any) -> dict[str, Any]:
    """Cores, memory, platform, Python, each of ``packages``' version (by distribution name) and
    ``extra`` as given."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    info.update({name: package_version(name) for name in packages})
    info.update(extra)
    return info
