"""One log line, and one 'association' event, per DICOM association we accept or refuse.

Each line carries the peer address, both AE titles, the accepted presentation contexts, the
operations done, the duration and the outcome (released, aborted, rejected with the standard's
reason, aborted for a PDU over our limit, closed during negotiation), so a technician can answer
"did the modality reach us, and what happened?" from the journal alone. Connections closed
before they sent a whole A-ASSOCIATE-RQ (by the pre-negotiation gate: ARTIM timeout, pending
limits, not an A-ASSOCIATE-RQ) get their line too, through `closed()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from pydicom.uid import UID
from pynetdicom import evt

from appliance.dicom import pdu_limits
from appliance.events import EventBus

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
    assoc: object = None


def reject_reason(primitive) -> str:
    """'called AE title not recognised (permanent, service user)' from an A-ASSOCIATE-RJ."""
    if primitive is None or getattr(primitive, "result", None) not in (1, 2):
        return "rejected"
    text = (f"{primitive.reason_str} ({primitive.result_str}, {primitive.source_str})").lower()
    return text.replace("ae title", "AE title")


def describe_context(cx) -> str:
    syntax = cx.transfer_syntax[0] if cx.transfer_syntax else None
    abstract = getattr(cx.abstract_syntax, "name", str(cx.abstract_syntax))
    return f"{abstract} [{getattr(syntax, 'name', syntax)}]"


def describe_uids(abstract_syntax: str, transfer_syntax: str) -> str:
    """The same text as `describe_context`, from the UIDs alone."""
    abstract, syntax = UID(abstract_syntax), UID(transfer_syntax)
    return f"{abstract.name or abstract} [{syntax.name or syntax}]"


def _alive(assoc) -> bool:
    """Whether an association or its DUL provider thread is still running."""
    dul = getattr(assoc, "dul", None)
    return assoc.is_alive() or (dul is not None and dul.is_alive())


class AssociationLog:
    """pynetdicom event handlers that record each association from open to close."""

    def __init__(self, bus: EventBus | None = None):
        self.bus = bus
        self._lock = threading.Lock()
        self._records: dict[int, AssociationRecord] = {}
        self._engine_open = 0  # connections the native engine has open

    def handlers(self) -> list[tuple]:
        return [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_DIMSE_RECV, self._on_dimse),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]

    def _record(self, assoc) -> AssociationRecord | None:
        with self._lock:
            return self._records.get(id(assoc))

    def _on_open(self, event: evt.Event) -> None:
        address = event.address
        record = AssociationRecord(peer=f"{address[0]}:{address[1]}", assoc=event.assoc)
        with self._lock:
            self._records[id(event.assoc)] = record
        if self.bus is not None:  # the activity LED lights while an association is open
            self.bus.publish("association_open", peer=record.peer)

    def _on_requested(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            self._names(record, event.assoc)
            record.outcome = "closed during negotiation"

    def _names(self, record: AssociationRecord, assoc) -> None:
        primitive = assoc.requestor.primitive
        record.calling_aet = assoc.requestor.ae_title or ""
        if primitive is not None:
            record.called_aet = primitive.called_ae_title or ""

    def _on_established(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is None:
            return
        self._names(record, event.assoc)
        record.contexts = [describe_context(cx) for cx in event.assoc.accepted_contexts]
        record.outcome = "open"
        log.debug("association from %s (%s -> %s) accepted: %s", record.peer,
                  record.calling_aet, record.called_aet, ", ".join(record.contexts))

    def _on_rejected(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is None:
            return
        self._names(record, event.assoc)
        record.outcome = "rejected: " + reject_reason(event.assoc.acceptor.primitive)

    def _on_released(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            record.outcome = "released"

    def _on_aborted(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            negotiating = record.outcome.startswith("closed")
            record.outcome = "aborted during negotiation" if negotiating else "aborted"

    def _on_dimse(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            name = type(event.message).__name__.replace("_", "-")
            if name.endswith("-RQ"):
                record.operations[name[:-3]] += 1

    def _on_close(self, event: evt.Event) -> None:
        with self._lock:
            record = self._records.pop(id(event.assoc), None)
        if record is None:
            return
        if record.outcome == "open":
            record.outcome = "connection closed"
        refusal = pdu_limits.refusals.pop(event.assoc)
        if refusal is not None:
            record.outcome = refusal
        self._write(record, time.monotonic() - record.started)

    def sweep(self) -> None:
        """Write the line of every association whose threads ended without a close event
        (pynetdicom 3's DUL thread dies on some out-of-order PDUs during negotiation, and a
        connection that fails negotiation may end without one): closing its socket if it is
        still open. Called about twice a second by the server."""
        settled = time.monotonic() - 2.0  # a record is made just before its threads start
        with self._lock:
            ended = [(key, record) for key, record in self._records.items()
                     if record.started < settled and not _alive(record.assoc)]
            for key, _ in ended:
                del self._records[key]
        for _, record in ended:
            sock = getattr(getattr(record.assoc, "dul", None), "socket", None)
            if sock is not None and sock.socket is not None:
                sock.close()
            if record.outcome == "open":
                record.outcome = "connection closed"
            refusal = pdu_limits.refusals.pop(record.assoc)
            record.outcome = refusal or f"{record.outcome} (protocol error)"
            self._write(record, time.monotonic() - record.started)

    def engine_event(self, event: dict) -> None:
        """The native engine's association events (appliance.dicom.engine `on_association`):
        "opened" lights the activity LED, "ended" writes the line; "established" adds nothing
        the "ended" event does not carry."""
        kind = event.get("event")
        if kind == "opened":
            with self._lock:
                self._engine_open += 1
            if self.bus is not None:
                self.bus.publish("association_open", peer=event.get("peer", ""))
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

    def closed(self, peer: str, outcome: str, duration: float) -> None:
        """The line of a connection closed before it became an association (by the
        pre-negotiation gate): no AE titles, no contexts."""
        self._write(AssociationRecord(peer=peer, outcome=outcome), duration)

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
            self.bus.publish("association", peer=record.peer, calling_aet=record.calling_aet,
                             called_aet=record.called_aet, contexts=record.contexts,
                             operations=dict(record.operations), duration=duration,
                             outcome=record.outcome)

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._records) + self._engine_open
