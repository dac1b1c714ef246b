"""What the web page asks of the services other components own: small interfaces that the
forward queue, the print spooler, the worklist and the hardware layer implement.

A provider left as None means that service is not built into this appliance: its dashboard
panel says so and its operations answer 404 with that sentence. Components hand their
provider to the web page through `Providers` in `appliance/component_list.py`.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from appliance.core.event_topics import Topic
from appliance.core.events import EventBus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueDestination:
    """The forward queue towards one destination."""

    name: str
    pending: int
    failed: int = 0
    held: bool = False
    oldest_age_seconds: float = 0.0
    last_error: str = ""


@runtime_checkable
class QueueProvider(Protocol):
    """The forward queue (issue 3)."""

    def destinations(self) -> list[QueueDestination]: ...
    def hold(self, destination: str) -> None: ...
    def release(self, destination: str) -> None: ...
    def retry(self, destination: str) -> int: ...
    # (stuck instances: appliance.forward.stuck.StuckRow, oldest first; how many there are)
    def instances(self, destination: str, limit: int = 20, offset: int = 0): ...
    def retry_instance(self, destination: str, sop_instance_uid: str) -> None: ...
    def skip_instance(self, destination: str, sop_instance_uid: str) -> None: ...


@dataclass(frozen=True)
class CommitmentTransaction:
    """A Storage Commitment request as the queue page shows it."""

    transaction_uid: str
    calling_aet: str
    state: str                  # "pending", "committed" or "failed"
    received: str               # local time, YYYY-MM-DD HH:MM:SS
    reported: str = ""          # how the report went, empty while not sent
    report_error: str = ""      # why the report could not be sent (yet)
    failures: tuple[str, ...] = ()  # "SOP Instance UID: 0xNNNN reason" per failed instance


@runtime_checkable
class CommitmentProvider(Protocol):
    """Storage Commitment transactions (issue 16)."""

    def counts(self) -> dict[str, int]: ...
    def transactions(self, limit: int = 50) -> list[CommitmentTransaction]: ...


@dataclass(frozen=True)
class PrinterState:
    name: str
    state: str  # "normal", "warning" or "failure"
    info: str = ""


@dataclass(frozen=True)
class PrintJobInfo:
    id: str
    created: str
    state: str
    printer: str = ""
    films: int = 1
    detail: str = ""
    number: int = 0       # the job's short number on this box (0: none; the UID is shown)
    film_size: str = ""   # e.g. "14INX17IN"


@runtime_checkable
class PrintProvider(Protocol):
    """The print spooler (issue 5)."""

    def printers(self) -> list[PrinterState]: ...
    def jobs(self, limit: int = 50) -> list[PrintJobInfo]: ...
    def preview(self, job_id: str) -> bytes | None: ...  # PNG of the rendered film
    def reprint(self, job_id: str) -> None: ...


@dataclass(frozen=True)
class WorklistSource:
    name: str
    items: int
    last_update: float | None  # epoch seconds, None = never


@runtime_checkable
class WorklistProvider(Protocol):
    """The worklist store and its feeders (issue 4)."""

    def counts(self) -> dict[str, int]: ...
    def completed_since(self, since: float) -> int: ...  # items COMPLETED since a timestamp
    def sources(self) -> list[WorklistSource]: ...
    def items(self, limit: int = 200) -> list[dict]: ...
    def add(self, item: dict) -> dict: ...  # {"id": str, "notes": [what was stored otherwise]}
    # data: the file's bytes or a binary file object (read as it goes); fmt: "csv" or "json";
    # {"imported": int, "notes": [str]}
    def import_file(self, data: bytes | BinaryIO, fmt: str) -> dict: ...
    def delete(self, item_id: str) -> bool: ...


@runtime_checkable
class MppsProvider(Protocol):
    """The MPPS procedure steps and their forward queue (appliance/mpps/web_provider.py)."""

    def counts(self) -> dict[str, int]: ...  # by status
    def steps(self, limit: int = 50) -> list[dict]: ...  # newest first
    def forward_pending(self) -> dict[str, int]: ...  # per RIS peer


@runtime_checkable
class FirmwareProvider(Protocol):
    """Firmware upload (the update issue): see appliance/update/web_provider.py."""

    max_bytes: int

    def state(self) -> dict: ...  # {"status": status.json, "pending", "history", "max_bytes"}
    async def receive(self, filename: str, length: int | None, chunks) -> dict: ...


@runtime_checkable
class TlsCertificateProvider(Protocol):
    """The DICOM TLS certificate as last read by its watch (appliance.dicom.tls_watch):
    `current()` returns a `tls_files.TlsSurvey` without reading a file."""

    def current(self): ...


@runtime_checkable
class DicomWebProvider(Protocol):
    """The local store for DICOMweb (appliance.dicomweb.archive.LocalArchive): `open()` gives
    (database, instances root) or raises StoreUnavailable."""

    def open(self) -> tuple: ...


class IdentifyProvider(Protocol):
    def identify(self, seconds: float) -> None: ...


class SystemProvider(Protocol):
    """Actions on the whole box."""

    def reboot(self) -> None: ...


class BusIdentify:
    """Identify by publishing the `identify` event (seconds; 0 stops): the status LEDs and the
    front panel (issue 6) subscribe to it."""

    def __init__(self, bus: EventBus):
        self.bus = bus

    def identify(self, seconds: float) -> None:
        self.bus.publish(Topic.IDENTIFY, seconds=seconds)


class SystemdReboot:
    """Reboot through systemd, a moment after the web page has answered."""

    def __init__(self, command: tuple[str, ...] = ("systemctl", "reboot"), delay: float = 2.0):
        self.command = command
        self.delay = delay

    def reboot(self) -> None:
        def run() -> None:
            log.warning("rebooting on request from the web page: %s", " ".join(self.command))
            try:
                subprocess.run(self.command, check=True, timeout=60)
            except (OSError, subprocess.SubprocessError) as exc:
                log.error("reboot failed: %s", exc)
        timer = threading.Timer(self.delay, run)
        timer.daemon = True
        timer.start()


@dataclass
class Providers:
    """The services the web page can show and operate; None = not in this appliance."""

    queue: QueueProvider | None = None
    printing: PrintProvider | None = None
    worklist: WorklistProvider | None = None
    #: MPPS states on the worklist page and in /metrics (appliance.mpps.web_provider).
    mpps: MppsProvider | None = None
    identify: IdentifyProvider | None = None
    system: SystemProvider = field(default_factory=SystemdReboot)
    #: Firmware upload and install progress (appliance.update.web_provider).
    firmware: FirmwareProvider | None = None
    #: The DICOM TLS certificate's expiry for /metrics (appliance.dicom.tls_watch).
    tls_certificate: TlsCertificateProvider | None = None
    #: Storage Commitment transactions for the queue page and /metrics
    #: (appliance.commitment.web_provider).
    commitment: CommitmentProvider | None = None
    #: QIDO-RS / WADO-RS over the instance store (appliance.dicomweb.archive).
    dicomweb: DicomWebProvider | None = None
