"""What the web page remembers from the event bus: associations now and recently, counters for
/metrics. It only listens (bus subscriptions). The log lines of the logs view are kept by
appliance.logsetup.RecentLines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

from appliance.events import Event, EventBus

log = logging.getLogger(__name__)

RECENT_ASSOCIATIONS = 50


@dataclass(frozen=True)
class AssociationSummary:
    ended: float  # epoch seconds
    peer: str
    calling_aet: str
    called_aet: str
    operations: str
    duration: float
    outcome: str


class Activity:
    """Subscribes to the bus; counts and remembers what the dashboard and /metrics show."""

    def __init__(self, bus: EventBus):
        self.bus = bus
        self._lock = threading.Lock()
        self.recent: deque[AssociationSummary] = deque(maxlen=RECENT_ASSOCIATIONS)
        self.open_associations = 0
        self.associations = Counter()  # by outcome kind: released, aborted, rejected, ...
        self.instances = Counter()  # received, duplicate, forwarded, failed
        self.print_jobs = Counter()  # by state
        self.worklist_queries = 0

    def attach(self) -> None:
        self.bus.subscribe(self._on_event)

    def detach(self) -> None:
        self.bus.unsubscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        data = event.data
        with self._lock:
            if event.topic == "association_open":
                self.open_associations += 1
            elif event.topic == "association":
                self.open_associations = max(0, self.open_associations - 1)
                outcome = str(data.get("outcome", ""))
                self.associations[outcome.split(":")[0]] += 1
                ops = data.get("operations") or {}
                self.recent.appendleft(AssociationSummary(
                    time.time(), str(data.get("peer", "")), str(data.get("calling_aet", "")),
                    str(data.get("called_aet", "")),
                    ", ".join(f"{n} {op}" for op, n in sorted(ops.items())) or "none",
                    float(data.get("duration", 0.0)), outcome))
            elif event.topic == "storage" and data.get("kind") in ("stored", "replaced",
                                                                     "duplicate"):
                self.instances["received"] += 1
            elif event.topic == "forward":
                # The forwarder (issue 3) publishes forward(destination, sent, failed).
                self.instances["forwarded"] += int(data.get("sent", 0))
                self.instances["failed"] += int(data.get("failed", 0))
            elif event.topic == "print_job" and data.get("state"):
                self.print_jobs[str(data["state"])] += 1
            elif event.topic == "worklist.query":
                self.worklist_queries += 1

    def snapshot_recent(self) -> list[AssociationSummary]:
        with self._lock:
            return list(self.recent)
