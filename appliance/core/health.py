"""What the LEDs, the front panel and the serial console show: one picture of the appliance's
health, kept up to date from the event bus (never by asking the components).

Topics read (fields in brackets; each payload is declared in appliance.core.event_topics and
the README lists them for the developers who publish them):

- `component` (name, state, error, failures): published by the supervisor;
- `association_open` (peer) and `association` (..., outcome): the DICOM server, at connection
  open and close;
- `print_job` (job, state: "printing", "done" or "failed");
- `queue` (destination, pending, backlog: true when the destination is falling behind);
- `printer` (name, state: "normal", "warning" or "failure", info);
- `disk` (state: "ok", "high" (above its mark) or "full", free_bytes): the data directory
  monitor, at start and when the state changes;
  `storage` with kind "space" (low) from the Storage SCP counts as "full" while low;
- `update` (state: "running", "done" or "failed", info);
- `identify` (seconds; 0 stops);
- `web_setup` (code: the one-time setup code while no web password is set, "" once it is);
- `dicom_tls` (state: "none", "ok", "expiring", "expired" or "unreadable", reason): the DICOM
  TLS certificate's watch; anything but "none" and "ok" is a warning with its reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.core.component import ComponentState
from appliance.core.event_topics import Topic
from appliance.core.events import Event, EventBus

log = logging.getLogger(__name__)

TOPICS = (Topic.COMPONENT, Topic.ASSOCIATION_OPEN, Topic.ASSOCIATION, Topic.PRINT_JOB,
          Topic.QUEUE, Topic.PRINTER, Topic.DISK, Topic.STORAGE, Topic.UPDATE, Topic.IDENTIFY,
          Topic.WEB_SETUP, Topic.DICOM_TLS)
#: Topics that change only the count of open associations (whether the box is `active`).
ASSOCIATION_TOPICS = (Topic.ASSOCIATION_OPEN, Topic.ASSOCIATION)


@dataclass(frozen=True)
class ComponentReport:
    """The last `component` event of one component."""

    state: ComponentState | str
    error: str
    failures: int


class HealthView:
    """Subscribes to the bus; read its properties from any thread."""

    def __init__(self, bus: EventBus, clock: Callable[[], float] = time.monotonic,
                 expected: Callable[[], set[str]] = set):
        self.clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.components: dict[str, ComponentReport] = {}
        #: Names of every supervised component (empty: the ones seen so far).
        self.expected = expected
        self.ever_ready = False
        self.open_associations = 0
        self.printing: set = set()
        self.queues: dict[str, tuple[int, bool]] = {}
        self.printers: dict[str, tuple[str, str]] = {}
        self.disk = "ok"
        self.storage_low = False
        self.updating = False
        self.identify_until = 0.0
        self.last_error = ""
        self.web_setup_code = ""
        self.tls_warning = ""
        #: Bumped by every change but an association's open or end: a listener that saw this
        #: revision need only look at `active` again (the LEDs do so for every association).
        self.revision = 0
        bus.subscribe(self._on_event)  # every topic; those of TOPICS are read

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (no arguments) after every change."""
        self._listeners.append(listener)

    def _on_event(self, event: Event) -> None:
        if event.topic not in TOPICS:
            return
        data = event.data
        if event.topic == Topic.STORAGE and data.get("kind") != "space":
            return  # one per stored instance: changes nothing shown, so no listener runs
        with self._lock:
            handler = getattr(self, "_" + event.topic)
            handler(data)
            if event.topic not in ASSOCIATION_TOPICS:
                self.revision += 1
        for listener in list(self._listeners):
            listener()

    # -- one handler per topic (called with the lock held) -----------------------------------

    def _component(self, data: dict) -> None:
        name, state = data.get("name", "?"), data.get("state", "")
        self.components[name] = ComponentReport(state, data.get("error", ""),
                                                data.get("failures", 0))
        if state == ComponentState.FAILED:
            self.last_error = f"{name}: {data.get('error', '')}"
        # Booting ends once every component has come up or failed (a failed one is a fault).
        expected = self.expected() or set(self.components)
        if not self.ever_ready and expected <= set(self.components) and all(
                self.components[n].state in (ComponentState.RUNNING, ComponentState.FAILED)
                for n in expected):
            self.ever_ready = True

    def _association_open(self, data: dict) -> None:
        self.open_associations += 1

    def _association(self, data: dict) -> None:
        self.open_associations = max(0, self.open_associations - 1)

    def _print_job(self, data: dict) -> None:
        job = data.get("job")
        if data.get("state") == "printing":
            self.printing.add(job)
        else:
            self.printing.discard(job)
            if data.get("state") == "failed":
                self.last_error = f"print job {job} failed"

    def _queue(self, data: dict) -> None:
        self.queues[data.get("destination", "?")] = (int(data.get("pending", 0)),
                                                     bool(data.get("backlog", False)))

    def _printer(self, data: dict) -> None:
        state = data.get("state", "normal")
        self.printers[data.get("name", "printer")] = (state, data.get("info", ""))
        if state == "failure":
            self.last_error = f"printer {data.get('name', '')}: {data.get('info', 'failure')}"

    def _disk(self, data: dict) -> None:
        self.disk = data.get("state", "ok")
        if self.disk == "full":
            self.last_error = "data disk full"

    def _storage(self, data: dict) -> None:
        if data.get("kind") == "space":
            self.storage_low = bool(data.get("low"))
            if self.storage_low:
                self.last_error = "data disk full: C-STORE refused"

    def _update(self, data: dict) -> None:
        self.updating = data.get("state") == "running"
        if data.get("state") == "failed":
            self.last_error = f"update failed: {data.get('info', '')}"

    def _identify(self, data: dict) -> None:
        seconds = float(data.get("seconds", 0))
        self.identify_until = self.clock() + seconds if seconds > 0 else 0.0

    def _web_setup(self, data: dict) -> None:
        self.web_setup_code = str(data.get("code", ""))

    def _dicom_tls(self, data: dict) -> None:
        bad = data.get("state") in ("expiring", "expired", "unreadable")
        self.tls_warning = str(data.get("reason") or "DICOM TLS certificate") if bad else ""

    # -- the picture ------------------------------------------------------------------------

    @property
    def identifying(self) -> bool:
        return self.clock() < self.identify_until

    @property
    def faults(self) -> list[str]:
        """Why the fault LED is on (empty: no fault)."""
        with self._lock:
            out = [f"{n} down" for n, c in self.components.items()
                   if c.state == ComponentState.FAILED]
            if self.disk == "full" or self.storage_low:
                out.append("disk full")
            out += [f"printer {n} failed" for n, (s, _) in self.printers.items()
                    if s == "failure"]
            return out

    @property
    def warnings(self) -> list[str]:
        with self._lock:
            out = [f"queue {d} backlog" for d, (_, backlog) in self.queues.items() if backlog]
            out += [f"printer {n} warning" for n, (s, _) in self.printers.items()
                    if s == "warning"]
            if self.disk == "high":
                out.append("disk above its mark")
            if self.tls_warning:
                out.append(self.tls_warning)
            return out

    @property
    def active(self) -> bool:
        with self._lock:
            return self.open_associations > 0 or bool(self.printing)

    def component_known(self, *names: str) -> bool:
        with self._lock:
            return any(n in self.components for n in names)


@dataclass(frozen=True)
class Verdict:
    """The appliance's state in one word and why: what the fault LED and the web page's
    verdict line both show."""

    state: str  # "failing", "degraded", "starting" or "healthy"
    reason: str = ""


def verdict(health: HealthView) -> Verdict:
    """The one reading of the health picture: a fault is "failing" (fault LED on), a warning
    "degraded" (fault LED blinking), before every component came up "starting" (power LED
    blinking), else "healthy"."""
    faults = health.faults
    if faults:
        return Verdict("failing", "; ".join(faults))
    warnings = health.warnings
    if warnings:
        return Verdict("degraded", "; ".join(warnings))
    if not health.ever_ready:
        return Verdict("starting", "not every component has come up yet")
    return Verdict("healthy")
