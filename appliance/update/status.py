"""The current install: `<data_dir>/update/status.json`, replaced atomically by the installer
at every step so the web page can show its progress.

{"state": "idle" | "installing" | "succeeded" | "failed", "percent": int, "message": str,
 "source": "cli" | "web" | "usb", "file": str, "started": ISO, "finished": ISO | null}

On the box the installer runs as root and the web page as user `appliance`: the file is
written 0640 with group `appliance` when that group exists.
"""

from __future__ import annotations

import grp
import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

STATES = ("idle", "installing", "succeeded", "failed")
READER_GROUP = "appliance"


@dataclass(frozen=True)
class InstallStatus:
    state: str = "idle"
    percent: int = 0
    message: str = "no update has been installed yet"
    source: str | None = None
    file: str | None = None
    started: str | None = None
    finished: str | None = None

    def but(self, **changes) -> InstallStatus:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


def write(path: Path, status: InstallStatus) -> None:
    if status.state not in STATES:
        raise ValueError(f"unknown install state {status.state!r}")
    data = (json.dumps(status.as_dict(), ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    write_atomically(path, data, mode=0o640)
    _share_with_readers(path)


def read(path: Path) -> InstallStatus:
    """The last status written; idle if none (or unreadable: the page must still load)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return InstallStatus()
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return InstallStatus(message=f"install status unreadable: {exc}")
    if not isinstance(data, dict) or data.get("state") not in STATES:
        return InstallStatus(message="install status unreadable")
    known = set(InstallStatus.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in known}
    try:
        values["percent"] = int(values.get("percent", 0))
    except (TypeError, ValueError):
        values["percent"] = 0
    return InstallStatus(**values)


def _share_with_readers(path: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam(READER_GROUP).gr_gid
    except KeyError:
        return  # a development machine without the appliance user: root-only is fine
    try:
        os.chown(path, -1, gid)
    except OSError as exc:
        log.warning("cannot give group %s read access to %s: %s", READER_GROUP, path, exc)
