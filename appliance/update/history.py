"""The update history: `<data_dir>/update/history.jsonl`, one JSON object per line, appended
by the installer and by the boot-health units, read by `appliance update status` and the web
page.

Each line: time (ISO-8601 UTC), event, slot ("A", "B" or null), version, source ("cli",
"web", "usb" or null) and reason. Lines are appended with O_APPEND and fsynced, so a power
cut loses at most the line being written; readers skip a line they cannot parse.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

EVENTS = ("install-started", "installed", "install-refused", "install-failed", "trial-boot",
          "marked-good", "boot-failed", "fell-back")
SOURCES = ("cli", "web", "usb")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def append(path: Path, event: str, *, slot: str | None = None, version: str | None = None,
           source: str | None = None, reason: str | None = None) -> dict:
    """Append one event and make it durable; returns the entry written."""
    if event not in EVENTS:
        raise ValueError(f"unknown update event {event!r} (one of {', '.join(EVENTS)})")
    if source is not None and source not in SOURCES:
        raise ValueError(f"unknown update source {source!r} (one of {', '.join(SOURCES)})")
    entry = {"time": utc_now(), "event": event, "slot": slot, "version": version,
             "source": source, "reason": reason}
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def read(path: Path, last: int | None = None) -> list[dict]:
    """The entries, oldest first (only the `last` ones if given); malformed lines skipped."""
    entries: deque[dict] = deque(maxlen=last) if last else deque()
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for number, line in enumerate(stream, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    log.debug("%s:%d: not JSON, skipped", path, number)
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("event"), str):
                    entries.append(entry)
    except FileNotFoundError:
        return []
    return list(entries)


def describe(entry: dict) -> str:
    """One line for a person: `2026-11-22T10:00:00Z installed slot B 1.2.0 (usb): ...`."""
    parts = [str(entry.get("time", "?")), str(entry.get("event", "?"))]
    if entry.get("slot"):
        parts.append(f"slot {entry['slot']}")
    if entry.get("version"):
        parts.append(str(entry["version"]))
    if entry.get("source"):
        parts.append(f"({entry['source']})")
    text = " ".join(parts)
    return f"{text}: {entry['reason']}" if entry.get("reason") else text
