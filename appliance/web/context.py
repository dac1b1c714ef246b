"""Everything the web page's routes share: the running configuration, the runtime (health,
reload), the password, sessions, the providers of other services, and what it has seen.

Routes read and act only through this object, so tests can build one without a supervisor.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.config import loader
from appliance.config.access import doors
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError
from appliance.core.events import EventBus
from appliance.core.health import verdict
from appliance.core.providers import BusIdentify, Providers
from appliance.core.runtime import Runtime
from appliance.dicom.verification import EchoResult, echo_peer
from appliance.store.database import Database
from appliance.system import logging_setup
from appliance.system.atomic_file import write_atomically
from appliance.web import system_info
from appliance.web.activity import Activity
from appliance.web.api_tokens import ApiTokens
from appliance.web.association_history import AssociationFilter, AssociationHistory
from appliance.web.log_view import ApplianceLog, LogPage, LogQuery, file_page
from appliance.web.passwords import PasswordStore, password_file
from appliance.web.sessions import LoginLimiter, SessionStore
from appliance.web.setup_code import SetupCode, setup_code_file
from appliance.web.stats import Sample, StatsSampler

log = logging.getLogger(__name__)


def local_midnight() -> float:
    """The start of today, local time, as a timestamp."""
    now = time.localtime()
    return time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1))


class NotAvailable(ApplianceError, LookupError):
    """An operation of a service this appliance does not have (yet)."""


class WebContext:
    def __init__(self, config: ApplianceConfig, runtime: Runtime,
                 providers: Providers | None = None):
        self.config = config
        self.runtime = runtime
        self.providers = providers or Providers()
        if self.providers.identify is None:
            self.providers.identify = BusIdentify(runtime.bus)
        self.passwords = PasswordStore(password_file(config.device.data_dir))
        self.tokens = ApiTokens(config.device.data_dir)
        self.sessions = SessionStore(config.web.session_minutes * 60.0)
        self.limiter = LoginLimiter(max_failures=config.web.login_attempts)
        self.setup_code = SetupCode(setup_code_file(config.device.data_dir), self.passwords,
                                    runtime.bus)
        self.activity = Activity(runtime.bus)
        # the process's lines since it started (`appliance run`); a test's own otherwise
        installed = logging_setup.recent_lines()
        self.recent_log = installed or logging_setup.RecentLines()
        self._own_recent_log = installed is None
        self.appliance_log = ApplianceLog.for_this_process(self.recent_log)
        self.started = time.time()
        #: The shared health picture: the verdict line says what the LEDs show.
        self.health_view = runtime.health_view
        #: Per-minute statistics and the associations history (opened by `attach`).
        self.stats: StatsSampler | None = None
        self.history: AssociationHistory | None = None
        self._db: Database | None = None

    @property
    def bus(self) -> EventBus:
        return self.runtime.bus

    def configure(self, config: ApplianceConfig) -> None:
        moved = config.device.data_dir != self.config.device.data_dir
        self.config = config
        if moved and self._db is not None:  # the statistics follow the data directory
            self._close_stores()
            self._open_stores()
        self.passwords.path = password_file(config.device.data_dir)
        self.setup_code.path = setup_code_file(config.device.data_dir)
        self.tokens.configure(config.device.data_dir)
        self.sessions.idle_seconds = config.web.session_minutes * 60.0
        self.limiter.max_failures = config.web.login_attempts
        for provider in vars(self.providers).values():
            if hasattr(provider, "configure"):
                provider.configure(config)

    def attach(self) -> None:
        self.activity.attach()
        self.recent_log.attach()  # a no-op for the process's, already on the root logger
        self.setup_code.ensure()
        if self._db is None:
            self._open_stores()

    def detach(self) -> None:
        self.activity.detach()
        self.tokens.close()
        if self._own_recent_log:
            self.recent_log.detach()
        self._close_stores()

    def _open_stores(self) -> None:
        self._db = Database.in_data_dir(Path(self.config.device.data_dir).absolute())
        self.history = AssociationHistory(self._db, self.bus)
        self.history.attach()
        self.stats = StatsSampler(self._db, self._sample, tick=self.history.flush)
        self.stats.start()

    def _close_stores(self) -> None:
        if self.stats is not None:
            self.stats.stop()
        if self.history is not None:
            self.history.detach()
        if self._db is not None:
            self._db.close()
        self._db = None

    def _sample(self) -> Sample:
        queue = self.providers.queue
        depth = {d.name: d.pending for d in queue.destinations()} if queue is not None else {}
        disk = self.status_disk()
        return Sample(depth, None if disk is None else round(disk.used_percent, 1))

    # -- configuration -----------------------------------------------------------------------

    def config_path(self) -> Path:
        return self.runtime.config_path_for_writes()

    def applied(self, config: ApplianceConfig | None) -> None:
        """A change was written: take it at once for the page, and reload the appliance."""
        if config is None:
            return
        self.configure(config)
        self.runtime.request_reload()

    # -- status ------------------------------------------------------------------------------

    def health(self) -> list[dict[str, Any]]:
        return [asdict(h) for h in self.runtime.health()]

    def open_associations(self) -> int:
        for component in self.runtime.components():
            assoc_log = getattr(component, "association_log", None)
            if assoc_log is not None:
                return assoc_log.open_count
        return self.activity.open_associations

    def status(self) -> dict[str, Any]:
        """The dashboard's content, also served as JSON by /api/v1/status."""
        c = self.config
        disk = self.status_disk()
        load = system_info.load_average()
        p = self.providers
        v = verdict(self.health_view)
        return {
            "verdict": {"state": v.state, "reason": v.reason},
            "identity": {
                "name": c.device.name, "hostname": system_info.hostname(),
                "ae_title": c.dicom.ae_title, "dicom_port": c.dicom.port,
                "dicom_tls_port": c.dicom.tls.port if c.dicom.tls.enabled else None,
                "ip_addresses": system_info.ip_addresses(), "version": __version__,
                "image_slot": system_info.image_slot() or "development",
            },
            "components": self.health(),
            "healthy": self.runtime.healthy,
            "associations": {
                "open": self.open_associations(),
                "recent": self.recent_associations(),
            },
            "received_today": self.received_today(),
            "queue": None if p.queue is None else [asdict(d) for d in p.queue.destinations()],
            "disk": None if disk is None else {
                **asdict(disk), "used_percent": round(disk.used_percent, 1),
                "reserve_bytes": c.storage.reserve_mb * 1024 * 1024,
                "high_water_percent": c.storage.high_water_percent,
                "retention_days": c.storage.retention_days},
            "printing": None if p.printing is None else {
                "printers": [asdict(x) for x in p.printing.printers()],
                "jobs": [asdict(j) for j in p.printing.jobs(limit=10)]},
            "worklist": None if p.worklist is None else {
                "counts": p.worklist.counts(),
                "completed_today": p.worklist.completed_since(local_midnight()),
                "sources": [asdict(s) for s in p.worklist.sources()]},
            "system": {
                "uptime_seconds": system_info.uptime_seconds(),
                "process_uptime_seconds": time.time() - self.started,
                "temperature_celsius": system_info.temperature_celsius(),
                "load_average": list(load) if load else None,
            },
        }

    def status_disk(self) -> system_info.Disk | None:
        return system_info.disk(Path(self.config.device.data_dir).absolute())

    def recent_associations(self, count: int = 50) -> list[dict[str, Any]]:
        """The last `count` associations, newest first (from the history)."""
        if self.history is None:
            return []
        found = self.history.search(AssociationFilter(), page_size=count)
        return [{k: v for k, v in asdict(row).items() if k != "id"} for row in found.rows]

    def received_today(self) -> int | None:
        """Images stored since local midnight (from the statistics; None before they open)."""
        if self.stats is None:
            return None
        return self.stats.store.total_since("received", int(local_midnight() // 60))

    def series(self, minutes: int) -> dict[str, Any]:
        """The statistics of the last `minutes` minutes (GET /api/v1/stats, the plots)."""
        if self.stats is None:
            raise NotAvailable("the statistics are not running (the web page is stopped)")
        return self.stats.series(minutes)  # reads only: a page view writes nothing

    def update_state(self) -> dict[str, Any]:
        """The landing page's Update card: slot, version, last install, trial state."""
        firmware = self.providers.firmware
        state = firmware.state() if firmware is not None else {}
        boots = [e for e in state.get("history", []) if e.get("event") in
                 ("trial-boot", "marked-good", "boot-failed", "fell-back")]
        trial = {"trial-boot": "on trial (not marked good yet)", "marked-good": "marked good",
                 "boot-failed": "trial boot failed", "fell-back": "fell back to the old slot"}
        return {"slot": system_info.image_slot() or "development", "version": __version__,
                "install": state.get("status"),
                "trial": trial[boots[-1]["event"]] if boots else "none recorded"}

    def access(self) -> list[dict[str, Any]]:
        """Which doors of the box are open (appliance.config.access), for the page and the API."""
        return [asdict(d) for d in doors(self.config)]

    # -- actions -----------------------------------------------------------------------------

    def echo_peer(self, name: str) -> EchoResult:
        peer = self.config.peer(name)
        if peer is None:
            raise NotAvailable(f"no peer named {name!r}")
        return echo_peer(self.config, peer, timeout=self.config.web.echo_timeout)

    def identify(self) -> float:
        seconds = self.config.hal.leds.identify_seconds
        self.providers.identify.identify(seconds)
        log.info("identify requested from the web page (%g s)", seconds)
        return seconds

    def reboot(self) -> None:
        log.warning("reboot requested from the web page")
        self.providers.system.reboot()

    def factory_reset(self) -> None:
        """Back to the built-in configuration and no password. Stored images, the queue and
        the worklist are kept: a reset must never lose an image."""
        path = self.config_path()
        if path.exists():
            backup = path.with_name(path.name + ".before-reset")
            os.replace(path, backup)
            log.warning("factory reset: configuration moved to %s", backup)
        self.passwords.clear()
        self.sessions.end_all()
        self.setup_code.ensure()
        # The data directory is where the box keeps its images: a reset keeps pointing there.
        data_dir = self.config.device.data_dir
        text = ("# reset to the built-in defaults by a factory reset\n"
                f"[device]\ndata_dir = {json.dumps(data_dir)}\n")
        write_atomically(path, text.encode("utf-8"))
        config = loader.load_file(path)
        self.applied(config)

    def set_first_password(self, password: str) -> None:
        """The first administrator password (the setup code was checked): the code ends."""
        self.passwords.set(password)
        self.setup_code.end()

    def change_password(self, current: str, new: str, keep_session: str | None) -> None:
        if not self.passwords.verify(current):
            raise PermissionError("the current password is wrong")
        self.passwords.set(new)
        self.sessions.end_all(keep=keep_session)

    def require(self, provider: Any, what: str) -> Any:
        if provider is None:
            raise NotAvailable(f"{what} is not part of this appliance yet")
        return provider

    def log_names(self) -> list[str]:
        names = ["appliance.log"]
        log_dir = Path(self.config.device.data_dir).absolute() / "logs"
        if log_dir.is_dir():
            names += sorted(p.name for p in log_dir.iterdir()
                            if p.is_file() and not p.name.startswith("."))
        return names

    def read_log(self, name: str, query: LogQuery) -> LogPage:
        """A page of a log by name (one of `log_names()`), newest first, filtered."""
        if name == "appliance.log" and name in self.log_names():
            return self.appliance_log.read(query)
        return file_page(self.log_text(name), query)

    def log_text(self, name: str) -> str:
        """A log by name: one of `log_names()`, nothing else (no paths)."""
        if name not in self.log_names():
            raise NotAvailable(f"no log named {name!r}")
        if name == "appliance.log":
            return self.appliance_log.text()
        path = Path(self.config.device.data_dir).absolute() / "logs" / name
        return path.read_text(errors="replace")
