"""Component `update`: shows the firmware installer's progress on the LEDs, the front panel
and the status page.

The installer is a separate root process (`appliance update`), so it cannot publish on the
appliance's event bus; it writes `<data_dir>/update/status.json` instead, and this component
watches that file and publishes the `update` event (state "running", "done" or "failed") that
`HealthView` turns into the blinking power LED and the last-error line.
"""

from __future__ import annotations

import logging
import os
import time

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.update import status
from appliance.update.paths import UpdatePaths

log = logging.getLogger(__name__)

BUS_STATES = {"installing": "running", "succeeded": "done", "failed": "failed"}


def boot_time() -> float:
    """When the system booted (epoch seconds)."""
    try:
        with open("/proc/uptime") as stream:
            return time.time() - float(stream.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


class UpdateStatusWatcher(Component):
    name = "update"

    def __init__(self, config: ApplianceConfig, bus: EventBus, interval: float = 1.0):
        self.bus = bus
        self.interval = interval
        self.configure(config)
        self._seen: tuple | None = None
        self._next = 0.0
        self._current = status.InstallStatus()

    def configure(self, config: ApplianceConfig) -> None:
        self.paths = UpdatePaths.in_data_dir(config.device.data_dir)

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.configure(config)
        self._seen = None

    def start(self) -> None:
        self._seen = None
        self._next = 0.0
        self.check()

    def stop(self, timeout: float) -> None:
        pass

    def check(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        first = self._seen is None
        try:
            info = os.stat(self.paths.status)
        except OSError:
            self._seen = ("missing",)
            return
        key = (info.st_mtime_ns, info.st_size, info.st_ino)
        if key == self._seen:
            return
        self._seen = key
        current = status.read(self.paths.status)
        if current.state == "installing" and info.st_mtime < boot_time():
            # written before this boot: that install was cut off by a reboot or power loss
            current = current.but(state="failed", message="the install was interrupted by a "
                                  "restart; install the bundle again")
        self._current = current
        bus_state = BUS_STATES.get(current.state)
        if bus_state is None or (first and bus_state != "running"):
            return  # an old result is no news: only changes after start are published
        log.info("firmware update %s: %s", current.state, current.message)
        self.bus.publish(Topic.UPDATE, state=bus_state, info=current.message,
                         percent=current.percent, source=current.source)

    def status(self) -> str:
        c = self._current
        if c.state == "installing":
            return f"installing {c.percent}% ({c.source})"
        if c.state == "idle":
            return "idle"
        return f"last install {c.state}: {c.message}"[:200]
