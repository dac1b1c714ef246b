"""The installer behind every install path (command line, web upload, USB stick): checks the
file, runs `rauc install`, and records each step in status.json and history.jsonl.

Only one install runs at a time (a lock file in the update directory; RAUC refuses a second
one too). A bundle RAUC refuses changes nothing on the box but the records.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.update import history, status
from appliance.update.paths import UpdatePaths
from appliance.update.rauc import Rauc, RaucError, system_state
from appliance.update.status import InstallStatus

log = logging.getLogger(__name__)

BUNDLE_SUFFIX = ".raucb"

Reporter = Callable[[int, str], None]


@dataclass(frozen=True)
class Outcome:
    """What became of one install: `event` is the history event that ended it."""

    ok: bool
    event: str  # installed, install-refused, install-failed
    message: str
    slot: str | None = None
    version: str | None = None


class Installer:
    def __init__(self, paths: UpdatePaths, rauc: Rauc | None = None,
                 report: Reporter | None = None):
        self.paths = paths
        self.rauc = rauc or Rauc()
        self.report = report or (lambda percent, text: None)

    def install(self, bundle: Path, source: str) -> Outcome:
        """Install `bundle`; never raises for a bad bundle or a RAUC failure."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        bundle = bundle.absolute()  # rauc.service does not share our working directory
        problem = check_bundle_file(bundle)
        if problem:
            return self.refuse(bundle, source, problem)
        lock = self._lock()
        if lock is None:
            reason = "another update is being installed right now: wait for it to finish, " \
                     "then try again"
            history.append(self.paths.history, "install-failed", source=source, reason=reason)
            log.warning("update from %s not started: %s", source, reason)
            return Outcome(False, "install-failed", reason)
        try:
            return self._install_locked(bundle, source)
        finally:
            os.close(lock)

    def _install_locked(self, bundle: Path, source: str) -> Outcome:
        target = None
        try:
            target = system_state(self.rauc.status()).other
        except RaucError as exc:
            log.warning("before the install: %s", exc)  # rauc install will say it better
        target_name = target.bootname if target else None
        current = InstallStatus(state="installing", percent=0, source=source,
                                file=str(bundle), started=history.utc_now(),
                                message=f"installing {bundle.name}")
        status.write(self.paths.status, current)
        history.append(self.paths.history, "install-started", slot=target_name, source=source,
                       reason=f"file {bundle}")
        log.info("installing %s (from %s) into slot %s", bundle, source, target_name or "?")
        last = {"percent": -1}

        def progress(percent: int, text: str) -> None:
            self.report(percent, text)
            if percent != last["percent"]:
                last["percent"] = percent
                status.write(self.paths.status, current.but(percent=percent, message=text))

        result = self.rauc.install(bundle, progress)
        finished = history.utc_now()
        if not result.ok:
            verdict = result.verdict
            event = "install-refused" if verdict.refused else "install-failed"
            history.append(self.paths.history, event, slot=target_name, source=source,
                           reason=verdict.reason)
            status.write(self.paths.status, current.but(
                state="failed", percent=100, finished=finished,
                message=("refused, nothing changed: " if verdict.refused else "failed: ")
                + verdict.reason))
            log.error("update %s %s: %s", bundle.name,
                      "refused" if verdict.refused else "failed", verdict.reason)
            return Outcome(False, event, verdict.reason, target_name)
        slot, version = target_name, None
        try:
            state = system_state(self.rauc.status())
            written = max((s for s in state.slots if s.bootname != state.booted),
                          key=lambda s: s.installed or "", default=None)
            if written is not None:
                slot, version = written.bootname, written.version
        except RaucError as exc:
            log.warning("after the install: %s", exc)
        message = (f"installed version {version or '?'} into slot {slot or '?'}; "
                   "it starts at the next reboot")
        history.append(self.paths.history, "installed", slot=slot, version=version,
                       source=source, reason=None)
        status.write(self.paths.status, current.but(state="succeeded", percent=100,
                                                    finished=finished, message=message))
        log.info("update %s: %s", bundle.name, message)
        return Outcome(True, "installed", message, slot, version)

    def refuse(self, bundle: Path, source: str, problem: str) -> Outcome:
        """Record that `bundle` was not installed, for `problem`, without asking RAUC."""
        now = history.utc_now()
        history.append(self.paths.history, "install-refused", source=source, reason=problem)
        status.write(self.paths.status, InstallStatus(
            state="failed", percent=0, source=source, file=str(bundle), started=now,
            finished=now, message=f"refused, nothing changed: {problem}"))
        log.error("update %s refused: %s", bundle, problem)
        return Outcome(False, "install-refused", problem)

    def _lock(self) -> int | None:
        fd = os.open(self.paths.root / ".install.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return None
            raise
        return fd


def check_bundle_file(bundle: Path) -> str:
    """Why `bundle` cannot be installed before RAUC even looks at it ('' if it may)."""
    try:
        info = bundle.stat()
    except FileNotFoundError:
        return f"{bundle}: no such file: check the path"
    except PermissionError:
        return f"{bundle}: permission denied: run the update as root"
    except OSError as exc:
        return f"{bundle}: cannot read it: {exc.strerror}"
    if not bundle.is_file():
        return f"{bundle}: not a file: give the path of a .raucb bundle"
    if info.st_size == 0:
        return f"{bundle}: the file is empty: copy the bundle again"
    if bundle.suffix.lower() != BUNDLE_SUFFIX:
        return f"{bundle}: not a firmware bundle (the name must end in {BUNDLE_SUFFIX})"
    return ""
