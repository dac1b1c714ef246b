"""Facts about the box for the dashboard: addresses, image slot, uptime, temperature, load,
disk use. Read from /proc and /sys (cheap; nothing is cached)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Disk:
    path: str
    total_bytes: int
    free_bytes: int

    @property
    def used_percent(self) -> float:
        return 100.0 * (self.total_bytes - self.free_bytes) / self.total_bytes \
            if self.total_bytes else 0.0


def disk(path: str | Path) -> Disk | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return Disk(str(path), usage.total, usage.free)


def ip_addresses() -> list[str]:
    """The box's own IPv4 addresses, from the kernel's routing table (no DNS lookups)."""
    found: list[str] = []
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        return found
    for index, line in enumerate(lines):
        if "/32 host LOCAL" in line and index > 0:
            address = lines[index - 1].split()[-1]
            if address not in found and not address.startswith("127."):
                found.append(address)
    return found


def image_slot(cmdline: Path = Path("/proc/cmdline")) -> str:
    """The root filesystem slot we booted from (RAUC's `rauc.slot=`), or "" in development."""
    try:
        for part in cmdline.read_text().split():
            if part.startswith("rauc.slot="):
                return part.split("=", 1)[1]
    except OSError:
        pass
    return ""


def uptime_seconds() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def temperature_celsius() -> float | None:
    """The SoC temperature (thermal zone 0), or None where there is no sensor."""
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def hostname() -> str:
    return socket.gethostname()


def format_duration(seconds: float | None) -> str:
    """A span as a person says it: '12 s', '5 min', '2 h 3 min', '3 d 4 h' (the two largest
    units; never '0 h 0 min')."""
    if seconds is None:
        return "unknown"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def short_uid(uid: str, keep: int = 12) -> str:
    """A long UID as a person can read and compare it: its end (where UIDs of one system
    differ), after an ellipsis; the whole one goes in a tooltip next to it."""
    uid = str(uid)
    return uid if len(uid) <= keep + 4 else "…" + uid[-keep:]


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
