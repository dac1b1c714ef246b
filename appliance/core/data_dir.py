"""The data directory watch: makes sure the data partition is there and writable, and reports
its free space.

Everything that changes lives under `[device] data_dir` (`/data` on the box). If it vanishes
(partition unmounted, path replaced) this component fails and the supervisor retries it with
backoff; the DICOM listener keeps answering meanwhile.

Its free space is sampled every `interval` seconds and published on the bus as the `disk`
event at start and whenever its state changes: "full" under `[storage] reserve_mb` (the
Storage SCP refuses images: the fault LED), "high" above `[storage] high_water_percent` used
(retention deletes forwarded copies early: the fault LED blinks), else "ok".
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.system import disk_usage

log = logging.getLogger(__name__)

#: Subdirectories every later component may rely on.
LAYOUT = ("config", "db", "instances", "print", "spool")


class DataDirectoryMonitor(Component):
    name = "datadir"

    def __init__(self, config: ApplianceConfig, bus: EventBus | None = None,
                 interval: float = 2.0):
        self.bus = bus
        self.interval = interval
        self.configure(config)
        self._next_check = 0.0
        self._free = self._total = 0
        self._used_percent = 0.0
        self._published: str | None = None

    def configure(self, config: ApplianceConfig) -> None:
        self.path = Path(config.device.data_dir).absolute()
        self.reserve_bytes = config.storage.reserve_mb * 2**20
        self.high_water_percent = config.storage.high_water_percent

    def reconfigure(self, config: ApplianceConfig) -> None:
        old = self.path
        self.configure(config)
        self._next_check = 0.0  # new thresholds apply at the next check
        if self.path != old:
            log.info("data directory changed from %s to %s", old, self.path)
            self.start()

    def start(self) -> None:
        try:
            for sub in LAYOUT:
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ComponentFailure(f"cannot prepare data directory {self.path}: "
                                   f"{exc.strerror or exc}") from exc
        self._next_check = 0.0
        self._published = None  # a (re)start tells the subscribers where the disk is
        self.check()

    def stop(self, timeout: float) -> None:
        pass

    def check(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.interval
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise ComponentFailure(f"data directory {self.path} is missing") from None
        except OSError as exc:
            raise ComponentFailure(f"data directory {self.path}: {exc.strerror}") from None
        if not stat.S_ISDIR(mode):
            raise ComponentFailure(f"data directory {self.path} is not a directory")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ComponentFailure(f"data directory {self.path} is not writable")
        fs = os.statvfs(self.path)
        self._free = fs.f_bavail * fs.f_frsize
        self._total = fs.f_blocks * fs.f_frsize
        self._used_percent = disk_usage.used_percent_of(fs)
        self._publish_disk()

    @property
    def used_percent(self) -> float:
        """Percent of the data partition in use, as `df` reports it (system/disk_usage.py)."""
        return self._used_percent

    @property
    def disk_state(self) -> str:
        """"full" under the reserve, "high" above the high-water mark, else "ok"."""
        if self._free < self.reserve_bytes:
            return "full"
        if self.used_percent > self.high_water_percent:
            return "high"
        return "ok"

    def _publish_disk(self) -> None:
        state = self.disk_state
        if state == self._published:
            return
        if state != "ok":
            log.warning("data directory %s: %.0f MB free, %.1f%% used: disk %s (reserve %.0f MB,"
                        " high water %d%%)", self.path, self._free / 2**20, self.used_percent,
                        state, self.reserve_bytes / 2**20, self.high_water_percent)
        elif self._published is not None:
            log.info("data directory %s: disk ok again (%.0f MB free)", self.path,
                     self._free / 2**20)
        self._published = state
        if self.bus is not None:
            self.bus.publish(Topic.DISK, state=state, free_bytes=self._free,
                             used_percent=round(self.used_percent, 1),
                             reserve_bytes=self.reserve_bytes,
                             high_water_percent=self.high_water_percent)

    def status(self) -> str:
        if not self._total:
            return f"{self.path}"
        return (f"{self.path} {self._free / 2**30:.1f} GiB free "
                f"({100 - self.used_percent:.0f}%)")
