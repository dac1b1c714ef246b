"""The event bus's contract: every topic, and the fields of its payload, declared once.

`EventBus.publish(Topic.X, **fields)` checks the fields against `PAYLOADS[Topic.X]` (a
frozen dataclass per topic): an unknown topic, a missing required field, a field the
declaration does not name or a value outside a `Literal`/enum type is an `EventContractError`
(raised on a strict bus, the default and what the tests use; logged by the running
appliance's bus). Subscribers read `event.data` (a dict with these keys) or `event.payload`
(the dataclass). tests/core/test_event_topics.py checks, from the source, that every topic
something reads has a publisher and that each publish call names declared fields.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from enum import Enum, StrEnum
from typing import Any, Literal

from appliance.core.component import ComponentState
from appliance.core.errors import EventContractError


class Topic(StrEnum):
    """Every topic of the bus (a `StrEnum`: `Topic.DISK == "disk"`)."""

    COMPONENT = "component"
    ASSOCIATION_OPEN = "association_open"
    ASSOCIATION = "association"
    STORAGE = "storage"
    INSTANCE_STORED = "instance.stored"
    FORWARD = "forward"
    QUEUE = "queue"
    PRINT_JOB = "print_job"
    PRINTER = "printer"
    DISK = "disk"
    UPDATE = "update"
    IDENTIFY = "identify"
    MAINTENANCE = "maintenance"
    WEB_SETUP = "web_setup"
    DICOM_TLS = "dicom_tls"
    WORKLIST_QUERY = "worklist.query"
    WORKLIST_ITEM = "worklist.item"


payload = dataclasses.dataclass(frozen=True)


@payload
class ComponentEvent:
    """`component`: the supervisor, on every state change of a component."""

    name: str
    state: ComponentState
    error: str  #: the last failure ("" when none)
    failures: int  #: consecutive failures (reset once it has run a while)


@payload
class AssociationOpenEvent:
    """`association_open`: the DICOM server, when a connection opens."""

    peer: str  #: "host:port"


@payload
class AssociationEvent:
    """`association`: the DICOM server, when an association ends."""

    peer: str
    outcome: str  #: "released", "aborted", "rejected: ...", "connection closed", ...
    calling_aet: str = ""
    called_aet: str = ""
    contexts: list = dataclasses.field(default_factory=list)  #: "class / syntax" lines
    operations: dict = dataclasses.field(default_factory=dict)  #: operation -> count
    duration: float = 0.0  #: seconds


@payload
class StorageEvent:
    """`storage`: an instance stored (Storage SCP, print to PACS), or the reserve watch."""

    kind: Literal["stored", "replaced", "duplicate", "space"]
    instance_id: int | None = None  #: the stored row (not for "space")
    sop_instance_uid: str = ""
    calling_aet: str = ""
    low: bool = False  #: "space": free space under `[storage] reserve_mb` (C-STORE refused)
    free_bytes: int | None = None  #: "space": free bytes in the data directory
    reserve_mb: int | None = None  #: "space": the reserve it was compared with
    #: "stored"/"replaced": the content hash of this copy was recorded with its index row
    content_hashed: bool = False


@payload
class InstanceStoredEvent:
    """`instance.stored`: the Storage SCP, for each new (not duplicate) instance."""

    study_instance_uid: str
    accession_number: str = ""


@payload
class ForwardEvent:
    """`forward`: the forwarder, after each batch sent to a destination."""

    destination: str
    sent: int
    failed: int


@payload
class QueueEvent:
    """`queue`: the forwarder, when a destination's depth or backlog changes."""

    destination: str
    pending: int
    backlog: bool  #: true: falling behind (a warning)


@payload
class PrintJobEvent:
    """`print_job`: the print spool, on every job state change."""

    job: str
    state: Literal["pending", "printing", "done", "failed"]
    printer: str = ""
    info: str = ""


@payload
class PrinterEvent:
    """`printer`: the print spool, when a printer's status changes."""

    name: str
    state: Literal["normal", "warning", "failure"]
    info: str = ""
    detail: str = ""


@payload
class DiskEvent:
    """`disk`: the data directory monitor, at start and whenever the state changes."""

    state: Literal["ok", "high", "full"]  #: high: over high_water_percent; full: under reserve
    free_bytes: int
    used_percent: float | None = None
    reserve_bytes: int | None = None  #: `[storage] reserve_mb` in bytes
    high_water_percent: int | None = None  #: `[storage] high_water_percent`


@payload
class UpdateEvent:
    """`update`: the update watcher, from the installer's status file."""

    state: Literal["running", "done", "failed"]
    info: str = ""
    percent: int | None = None
    source: str = ""


@payload
class IdentifyEvent:
    """`identify`: the panel, console or web page; all LEDs blink for `seconds` (0 stops)."""

    seconds: float


@payload
class MaintenanceEvent:
    """`maintenance`: a maintenance action is about to happen."""

    action: Literal["reboot", "factory-reset"]


@payload
class WebSetupEvent:
    """`web_setup`: the one-time setup code while no web password is set, "" once it is."""

    code: str


@payload
class DicomTlsEvent:
    """`dicom_tls`: the TLS certificate watch, when its picture changes."""

    state: Literal["none", "ok", "expiring", "expired", "unreadable"]
    reason: str
    subject: str = ""
    not_after: float | None = None  #: epoch seconds
    days_left: int | None = None


@payload
class WorklistQueryEvent:
    """`worklist.query`: the MWL SCP, after each C-FIND."""

    calling_aet: str
    answers: int


@payload
class WorklistItemEvent:
    """`worklist.item`: the worklist store, on every change of its rows (with counts)."""

    action: Literal["put", "sync", "status", "delete"]
    created: int = 0
    updated: int = 0
    removed: int = 0
    count: int = 0
    status: str = ""
    source: str = ""


PAYLOADS: dict[Topic, type] = {
    Topic.COMPONENT: ComponentEvent,
    Topic.ASSOCIATION_OPEN: AssociationOpenEvent,
    Topic.ASSOCIATION: AssociationEvent,
    Topic.STORAGE: StorageEvent,
    Topic.INSTANCE_STORED: InstanceStoredEvent,
    Topic.FORWARD: ForwardEvent,
    Topic.QUEUE: QueueEvent,
    Topic.PRINT_JOB: PrintJobEvent,
    Topic.PRINTER: PrinterEvent,
    Topic.DISK: DiskEvent,
    Topic.UPDATE: UpdateEvent,
    Topic.IDENTIFY: IdentifyEvent,
    Topic.MAINTENANCE: MaintenanceEvent,
    Topic.WEB_SETUP: WebSetupEvent,
    Topic.DICOM_TLS: DicomTlsEvent,
    Topic.WORKLIST_QUERY: WorklistQueryEvent,
    Topic.WORKLIST_ITEM: WorklistItemEvent,
}


def topic_of(name: str) -> Topic:
    """The declared topic called `name`; EventContractError when there is none."""
    try:
        return Topic(name)
    except ValueError:
        raise EventContractError(f"unknown event topic {name!r} (appliance.core.event_topics "
                                 "declares every topic)") from None


@functools.cache
def fields_of(topic: Topic) -> tuple[frozenset[str], frozenset[str], dict[str, tuple]]:
    """(every field, the required ones, field -> allowed values) of `topic`'s payload."""
    spec = PAYLOADS[topic]
    hints = typing.get_type_hints(spec)
    names, required, choices = set(), set(), {}
    for f in dataclasses.fields(spec):
        names.add(f.name)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.add(f.name)
        hint = hints[f.name]
        if typing.get_origin(hint) is Literal:
            choices[f.name] = typing.get_args(hint)
        elif isinstance(hint, type) and issubclass(hint, Enum):
            choices[f.name] = tuple(m.value for m in hint)
    return frozenset(names), frozenset(required), choices


def problems(topic: Topic, data: dict[str, Any]) -> list[str]:
    """What is wrong with `data` as the payload of `topic` (empty: nothing)."""
    names, required, choices = fields_of(topic)
    out = [f"{topic}: missing field {n!r}" for n in sorted(required - set(data))]
    out += [f"{topic}: unknown field {n!r}" for n in sorted(set(data) - names)]
    out += [f"{topic}: {n} = {data[n]!r} is not one of {', '.join(map(str, allowed))}"
            for n, allowed in choices.items() if n in data and data[n] not in allowed]
    return out
