"""The data directory watch: makes sure the data partition is there and writable, and reports
its free space.

Everything that changes lives under `[device] data_dir` (`/data` on the box). If it vanishes
(partition unmounted, path replaced) this component fails and the supervisor retries it with
backoff; the DICOM listener keeps answering meanwhile.
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

log = logging.getLogger(__name__)

#: Subdirectories every later component may rely on.
LAYOUT = ("config", "db", "instances", "print", "spool")


class DataDirectoryMonitor(Component):
    name = "datadir"

    def __init__(self, config: ApplianceConfig, interval: float = 2.0):
        self.interval = interval
        self.configure(config)
        self._next_check = 0.0
        self._free = self._total = 0

    def configure(self, config: ApplianceConfig) -> None:
        self.path = Path(config.device.data_dir).absolute()

    def reconfigure(self, config: ApplianceConfig) -> None:
        old = self.path
        self.configure(config)
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

    def status(self) -> str:
        if not self._total:
            return f"{self.path}"
        percent = 100 * self._free / self._total
        return f"{self.path} {self._free / 2**30:.1f} GiB free ({percent:.0f}%)"
