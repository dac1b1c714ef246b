"""The supervisor's line to systemd: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1.

Uses systemd-python's `systemd.daemon.notify`. Without a `NOTIFY_SOCKET` (not started by
systemd, or in a plain terminal) every call is a no-op.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends sd_notify messages and knows the watchdog interval systemd asked for."""

    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ if env is None else env)
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self.watchdog_usec = _watchdog_usec(env)
        self._notify = None
        if self.enabled:
            from systemd import daemon  # only needed, and only imported, under systemd

            self._notify = daemon.notify

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings: half of WATCHDOG_USEC, or None when not asked."""
        if not self.watchdog_usec:
            return None
        return self.watchdog_usec / 1_000_000 / 2

    def send(self, *fields: str) -> None:
        if self._notify is None:
            return
        message = "\n".join(fields)
        if not self._notify(message):
            log.debug("sd_notify %r was not delivered", message)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        self.send("RELOADING=1")

    def reloaded(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")


def _watchdog_usec(env: dict[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number", raw)
        return None
    return usec if usec > 0 else None
