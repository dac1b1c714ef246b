"""The running appliance's record in its data directory, and how another process on the same
box asks it to apply a changed configuration file.

`appliance run` keeps `<data_dir>/run/appliance.json`: its pid and process start time, the
configuration file it reads, and the outcome of its last reload (a generation number that
grows with every reload, whether it was applied, why not, and a SHA-256 of the file text it
read). The file is removed on a clean stop; a file left by a crash is recognised as stale
because no process with that pid and start time exists any more.

`appliance config set` and `appliance panel` run as separate processes: after writing the
file they find the running appliance from that record, send it SIGHUP (the same reload the
web page asks for in-process) and wait until the record says it read exactly the text they
wrote. Only then do they say "applied"; otherwise they say plainly why not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

RECORD = Path("run") / "appliance.json"
RELOAD_TIMEOUT = 15.0


@dataclass(frozen=True)
class ReloadOutcome:
    """Whether a saved change reached the running appliance, and if not, why not."""

    applied: bool
    reason: str = ""
    none_running: bool = False  # no appliance was running: the change waits for its start

    def describe(self) -> str:
        """'applied' or 'not applied yet: REASON' (for messages after 'saved; ')."""
        return "applied" if self.applied else f"not applied yet: {self.reason}"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path | None) -> str:
    """The SHA-256 of the file's bytes ('' when there is no such file)."""
    if path is None:
        return ""
    try:
        return digest(Path(path).read_bytes())
    except OSError:
        return ""


def record_path(data_dir: str | Path) -> Path:
    return Path(data_dir).absolute() / RECORD


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of process `pid` (clock ticks since boot), None if there is no
    such process. With the pid it names one process, so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces or parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


class RunningRecord:
    """Written by `appliance run`: who is running, on which file, and its last reload."""

    def __init__(self, data_dir: str | Path, config_path: Path | None):
        self.path = record_path(data_dir)
        self.config_path = config_path
        self.pid = os.getpid()
        self.generation = 0
        self.last: dict = {"applied": True, "reason": "", "digest": file_digest(config_path)}

    def _write(self) -> None:
        data = {"pid": self.pid, "start_time": process_start_time(self.pid),
                "config": str(self.config_path.absolute()) if self.config_path else None,
                "generation": self.generation, **self.last}
        try:
            write_atomically(self.path, (json.dumps(data, indent=1) + "\n").encode())
        except OSError as exc:
            log.warning("cannot write %s (other processes cannot ask this appliance to "
                        "reload): %s", self.path, exc)

    def started(self) -> None:
        self._write()

    def reloaded(self, outcome: ReloadOutcome, text_digest: str,
                 config_path: Path | None, data_dir: str | Path) -> None:
        """A reload finished; `text_digest` is the SHA-256 of the file text it read."""
        self.generation += 1
        self.config_path = config_path
        self.last = {"applied": outcome.applied, "reason": outcome.reason,
                     "digest": text_digest}
        moved = record_path(data_dir)
        if moved != self.path:
            self.stopped()
            self.path = moved
        self._write()

    def stopped(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc)


class NotRunning(Exception):  # noqa: N818 - a state, not a failure: the message is the reason
    """No running appliance could be asked to reload; the message says why."""


@dataclass(frozen=True)
class RunningAppliance:
    pid: int
    config: Path | None
    generation: int
    applied: bool
    reason: str
    digest: str


def read_record(data_dir: str | Path) -> RunningAppliance:
    """The running appliance that uses `data_dir`; raises NotRunning saying why there is none
    (no record, a stale record of a stopped or crashed appliance, an unreadable record)."""
    path = record_path(data_dir)
    try:
        data = json.loads(path.read_text())
        pid = int(data["pid"])
        record = RunningAppliance(
            pid=pid, config=Path(data["config"]) if data.get("config") else None,
            generation=int(data.get("generation", 0)), applied=bool(data.get("applied")),
            reason=str(data.get("reason", "")), digest=str(data.get("digest", "")))
        start_time = data.get("start_time")
    except FileNotFoundError:
        raise NotRunning(f"no running appliance found (no {path})") from None
    except PermissionError:
        raise NotRunning(f"cannot read {path}: permission denied") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotRunning(f"no running appliance found ({path} is unreadable: {exc})") from None
    actual = process_start_time(pid)
    if actual is None or (start_time is not None and actual != start_time):
        raise NotRunning(f"no running appliance found (stale {path}: process {pid} "
                         "is gone)")
    return record


def reload_running(config_path: Path, data_dir: str | Path,
                   timeout: float = RELOAD_TIMEOUT) -> ReloadOutcome:
    """Ask the appliance running on `data_dir` to re-read `config_path` (just written by the
    caller) and wait until it has read exactly the file's current text."""
    try:
        running = read_record(data_dir)
    except NotRunning as exc:
        return ReloadOutcome(False, str(exc), none_running=True)
    ours = Path(config_path).absolute()
    if running.config is None:
        return ReloadOutcome(False, f"the running appliance (pid {running.pid}) runs on "
                                    f"built-in defaults, not {ours}; restart it to use the file")
    if running.config.absolute() != ours:
        return ReloadOutcome(False, f"the running appliance (pid {running.pid}) reads "
                                    f"{running.config}, not {ours}")
    wanted = file_digest(ours)
    try:
        os.kill(running.pid, signal.SIGHUP)
    except PermissionError:
        return ReloadOutcome(False, f"no permission to signal the running appliance (pid "
                                    f"{running.pid}); run as its user or root, or "
                                    "systemctl reload appliance")
    except ProcessLookupError:
        return ReloadOutcome(False, f"the appliance (pid {running.pid}) stopped meanwhile")
    deadline = time.monotonic() + timeout
    latest = running
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            latest = read_record(data_dir)
        except NotRunning as exc:
            return ReloadOutcome(False, f"the appliance stopped while reloading ({exc})")
        if latest.generation > running.generation and latest.digest == wanted:
            return ReloadOutcome(latest.applied, latest.reason)
    if latest.generation > running.generation:
        return ReloadOutcome(False, "the appliance reloaded, but the file changed again "
                                    "meanwhile; check the current settings")
    return ReloadOutcome(False, f"the appliance (pid {running.pid}) did not reload within "
                                f"{timeout:g} s")
