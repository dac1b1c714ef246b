"""The in-process event bus: every state change is published here once, and the LEDs, the
web page, metrics and the event log subscribe instead of being called by each component."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One thing that happened: `topic` says what kind (e.g. 'component', 'association')."""

    topic: str
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous publish/subscribe. A subscriber that raises is logged and skipped, never
    allowed to break the publisher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[str | None, Subscriber]] = []

    def subscribe(self, subscriber: Subscriber, topic: str | None = None) -> None:
        """Call `subscriber` for every event (or only those of `topic`)."""
        with self._lock:
            self._subscribers.append((topic, subscriber))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = [(t, s) for t, s in self._subscribers if s is not subscriber]

    def publish(self, topic: str, **data: Any) -> None:
        event = Event(topic, data)
        with self._lock:
            targets = [s for t, s in self._subscribers if t is None or t == topic]
        for subscriber in targets:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, topic)
