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

from pydicom.uid import UID

from appliance.core.event_topics import Topic
from appliance.core.events import EventBus

log = logging.getLogger(__name__)


#: Outcomes logged as a warning: the connection was turned away or broken off by us.
REFUSED = ("rejected", "refused", "aborted:")


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
        the "ended" event does not carry. Run on the association's thread once per event,
        so it does no more than that."""
        kind = event.get("event")
        if kind == "opened":
            with self._lock:
                self._engine_open += 1
            if self.bus is not None:
                self.bus.publish(Topic.ASSOCIATION_OPEN, peer=event.get("peer", ""))
        elif kind == "ended":
            with self._lock:
                self._engine_open = max(0, self._engine_open - 1)
            self._write(event)

    def _write(self, event: dict) -> None:
        peer = event.get("peer", "")
        calling, called = event.get("calling_ae", ""), event.get("called_ae", "")
        contexts = [describe_uids(cx["abstract_syntax"], cx["transfer_syntax"])
                    for cx in event.get("contexts", ())]
        operations = dict(event.get("operations") or {})
        duration = float(event.get("duration", 0.0))
        outcome = event.get("outcome", "connection closed")
        level = logging.WARNING if outcome.startswith(REFUSED) else logging.INFO
        if log.isEnabledFor(level):
            ops = ", ".join(f"{n} {op}" for op, n in sorted(operations.items())) or "none"
            log.log(level,
                    "association from %s calling=%r called=%r contexts=[%s] operations=[%s] "
                    "duration=%.3fs outcome=%s",
                    peer, calling, called, "; ".join(contexts), ops, duration, outcome)
        if self.bus is not None:
            self.bus.publish(Topic.ASSOCIATION, peer=peer, calling_aet=calling,
                             called_aet=called, contexts=contexts, operations=operations,
                             duration=duration, outcome=outcome)

    @property
    def open_count(self) -> int:
        with self._lock:
            return self._engine_open
