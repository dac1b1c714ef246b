"""One log line, and one 'association' event, per DICOM connection the native engine accepts
or refuses.

Each line carries the peer address, both AE titles, the accepted presentation contexts, the
operations done, the duration and the outcome (released, aborted, rejected with the standard's
reason, aborted for a PDU over our limit, closed before or during negotiation), so a technician
can answer "did the modality reach us, and what happened?" from the journal alone. The engine
reports each connection's events (`engine_event`); a rejection is worded as
`appliance.dicom.scu.rejection_reason` words the ones our SCUs receive.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from pydicom.uid import UID

from appliance.core.event_topics import Topic
from appliance.core.events import EventBus

log = logging.getLogger(__name__)


@dataclass
class AssociationRecord:
    peer: str
    started: float = field(default_factory=time.monotonic)
    calling_aet: str = ""
    called_aet: str = ""
    contexts: list[str] = field(default_factory=list)
    operations: Counter = field(default_factory=Counter)
    outcome: str = "closed during negotiation"


@functools.lru_cache(maxsize=1024)
def describe_uids(abstract_syntax: str, transfer_syntax: str) -> str:
    """An accepted context as the line shows it: 'CT Image Storage [Explicit VR Little
    Endian]'."""
    abstract, syntax = UID(abstract_syntax), UID(transfer_syntax)
    return f"{abstract.name or abstract} [{syntax.name or syntax}]"


class AssociationLog:
    """The association log of the DICOM listener: a line and a bus event per connection."""

    def __init__(self, bus: EventBus | None = None):
        self.bus = bus
        self._lock = threading.Lock()
        self._engine_open = 0  # connections the native engine has open

    def engine_event(self, event: dict) -> None:
        """The native engine's association events (appliance.dicom.engine `on_association`):
        "opened" lights the activity LED, "ended" writes the line; "established" adds nothing
        the "ended" event does not carry."""
        kind = event.get("event")
        if kind == "opened":
            with self._lock:
                self._engine_open += 1
            if self.bus is not None:
                self.bus.publish(Topic.ASSOCIATION_OPEN, peer=event.get("peer", ""))
        elif kind == "ended":
            with self._lock:
                self._engine_open = max(0, self._engine_open - 1)
            record = AssociationRecord(
                peer=event.get("peer", ""), calling_aet=event.get("calling_ae", ""),
                called_aet=event.get("called_ae", ""),
                contexts=[describe_uids(cx["abstract_syntax"], cx["transfer_syntax"])
                          for cx in event.get("contexts", [])],
                operations=Counter(event.get("operations", {})),
                outcome=event.get("outcome", "connection closed"))
            self._write(record, float(event.get("duration", 0.0)))

    def _write(self, record: AssociationRecord, duration: float) -> None:
        ops = ", ".join(f"{n} {op}" for op, n in sorted(record.operations.items())) or "none"
        refused = record.outcome.startswith(("rejected", "refused", "aborted:"))
        level = logging.WARNING if refused else logging.INFO
        log.log(level,
                "association from %s calling=%r called=%r contexts=[%s] operations=[%s] "
                "duration=%.3fs outcome=%s",
                record.peer, record.calling_aet, record.called_aet, "; ".join(record.contexts),
                ops, duration, record.outcome)
        if self.bus is not None:
            self.bus.publish(Topic.ASSOCIATION, peer=record.peer, calling_aet=record.calling_aet,
                             called_aet=record.called_aet, contexts=record.contexts,
                             operations=dict(record.operations), duration=duration,
                             outcome=record.outcome)

    @property
    def open_count(self) -> int:
        with self._lock:
            return self._engine_open
