"""What the web page counts from the event bus: open associations, and the counters of
/metrics. It only listens (bus subscriptions). The associations history is kept in the database
(appliance.web.association_history); the log lines of the logs view by
appliance.system.logging_setup.RecentLines.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from appliance.core.event_topics import Topic
from appliance.core.events import Event, EventBus

log = logging.getLogger(__name__)


class Activity:
    """Subscribes to the bus; counts and remembers what the dashboard and /metrics show."""

    def __init__(self, bus: EventBus):
        self.bus = bus
        self._lock = threading.Lock()
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
            if event.topic == Topic.ASSOCIATION_OPEN:
                self.open_associations += 1
            elif event.topic == Topic.ASSOCIATION:
                self.open_associations = max(0, self.open_associations - 1)
                outcome = str(data.get("outcome", ""))
                self.associations[outcome.split(":")[0]] += 1
            elif event.topic == Topic.STORAGE and data.get("kind") in ("stored", "replaced",
                                                                     "duplicate"):
                self.instances["received"] += 1
            elif event.topic == Topic.FORWARD:
                # The forwarder (issue 3) publishes forward(destination, sent, failed).
                self.instances["forwarded"] += int(data.get("sent", 0))
                self.instances["failed"] += int(data.get("failed", 0))
            elif event.topic == Topic.PRINT_JOB and data.get("state"):
                self.print_jobs[str(data["state"])] += 1
            elif event.topic == Topic.WORKLIST_QUERY:
                self.worklist_queries += 1
