"""N-EVENT-REPORT requests from us (the SCP) to a print SCU: printer status changes and print
job progress, sent on a per-association thread so they never run inside a request handler
(with the native engine: handed to the engine, which sends them between requests).

pynetdicom's `send_n_event_report` waits for the answer by taking the next message off the
association's queue, so a request the SCU sends meanwhile would be taken for the answer and
lost; this sender pauses the association's reactor the same way but puts any other message
back for the reactor to serve.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from io import BytesIO

from pydicom import Dataset
from pynetdicom.dimse_primitives import N_EVENT_REPORT
from pynetdicom.dsutils import encode

log = logging.getLogger(__name__)

_ids = itertools.count(0x7000)  # message IDs well apart from typical SCU numbering


def event_sender(assoc) -> EventSender | EngineEventSender:
    """The sender for an association: the engine's own queue when the association is the
    native engine's (it has `send_event`), else a pynetdicom `EventSender`."""
    if hasattr(assoc, "send_event"):
        return EngineEventSender(assoc)
    return EventSender(assoc)


class EngineEventSender:
    """Event reports through the native engine, which queues them per association and sends
    them from the association's own thread between requests (and matches the answers)."""

    def __init__(self, assoc):
        self.assoc = assoc

    def send(self, abstract_syntax: str, class_uid: str, instance_uid: str, event_type: int,
             info: Dataset) -> None:
        if not self.assoc.send_event(abstract_syntax, class_uid, instance_uid, event_type,
                                     info):
            log.debug("N-EVENT-REPORT %s type %d not sent: the association is over",
                      class_uid, event_type)

    def close(self) -> None:
        """Nothing to stop: the engine drops what is queued when the association ends."""


class EventSender:
    """Queues event reports for one pynetdicom association and sends them in order."""

    def __init__(self, assoc):
        self.assoc = assoc
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="print-events", daemon=True)
        self._thread.start()

    def send(self, abstract_syntax: str, class_uid: str, instance_uid: str, event_type: int,
             info: Dataset) -> None:
        self._queue.put((abstract_syntax, class_uid, instance_uid, event_type, info))

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if not self.assoc.is_established:
                return
            try:
                self._send(*item)
            except Exception:
                log.exception("N-EVENT-REPORT to %s failed", self.assoc.requestor.ae_title)

    def _send(self, abstract_syntax: str, class_uid: str, instance_uid: str, event_type: int,
              info: Dataset) -> None:
        assoc = self.assoc
        context = next((cx for cx in assoc.accepted_contexts
                        if cx.abstract_syntax == abstract_syntax), None)
        if context is None:
            return
        syntax = context.transfer_syntax[0]
        req = N_EVENT_REPORT()
        req.MessageID = next(_ids) & 0xFFFF
        req.AffectedSOPClassUID = class_uid
        req.AffectedSOPInstanceUID = instance_uid
        req.EventTypeID = event_type
        req.EventInformation = BytesIO(encode(info, syntax.is_implicit_VR,
                                              syntax.is_little_endian, syntax.is_deflated))
        assoc._reactor_checkpoint.clear()
        try:
            while not assoc._is_paused and assoc.is_established:
                time.sleep(0.0005)
            if not assoc.is_established:
                return
            assoc.dimse.send_msg(req, context.context_id)
            others = []
            deadline = time.monotonic() + (assoc.dimse_timeout or 30)
            while time.monotonic() < deadline and assoc.is_established:
                try:
                    cx_id, msg = assoc.dimse.msg_queue.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(msg, N_EVENT_REPORT) and \
                        msg.MessageIDBeingRespondedTo == req.MessageID:
                    log.debug("N-EVENT-REPORT %s answered 0x%04X", class_uid, msg.Status or 0)
                    break
                others.append((cx_id, msg))
            else:
                log.warning("no answer to N-EVENT-REPORT from %s", assoc.requestor.ae_title)
            for item in others:
                assoc.dimse.msg_queue.put(item)
        finally:
            assoc._reactor_checkpoint.set()
