"""N-EVENT-REPORT requests from us (the SCP) to a print SCU: printer status changes and print
job progress, handed to the native engine, which queues them per association and sends them
from the association's own thread between requests (never inside a request handler).
"""

from __future__ import annotations

import logging

from pydicom import Dataset

log = logging.getLogger(__name__)


def event_sender(assoc) -> EngineEventSender:
    """The sender for an association (the dispatcher's view of an engine association, which
    has `send_event`)."""
    return EngineEventSender(assoc)


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
