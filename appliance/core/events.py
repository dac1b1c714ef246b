"""The in-process event bus: every state change is published here once, and the LEDs, the
web page, metrics and the event log subscribe instead of being called by each component.

Topics and their payloads are declared in appliance.core.event_topics; the bus checks every
`publish` and `subscribe` against that declaration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.core.errors import EventContractError
from appliance.core.event_topics import PAYLOADS, Topic, problems, topic_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One thing that happened: `topic` says what kind (e.g. Topic.COMPONENT), `data` holds
    the payload's fields (the keys its declaration in event_topics names)."""

    topic: Topic | str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        """The payload as its declared dataclass (event_topics.PAYLOADS)."""
        return PAYLOADS[Topic(self.topic)](**self.data)


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous publish/subscribe. A subscriber that raises is logged and skipped, never
    allowed to break the publisher.

    `strict` (the default, and what the tests use): an event that breaks its declaration
    (unknown topic, missing or unknown field, value outside its choices) raises
    EventContractError in the publisher. The running appliance's bus is not strict: it logs
    the error and delivers the event as published."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self._lock = threading.Lock()
        self._subscribers: list[tuple[str | None, Subscriber]] = []

    def subscribe(self, subscriber: Subscriber, topic: Topic | str | None = None) -> None:
        """Call `subscriber` for every event (or only those of `topic`)."""
        if topic is not None:
            topic = self._declared(topic)
        with self._lock:
            self._subscribers.append((topic, subscriber))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = [(t, s) for t, s in self._subscribers if s is not subscriber]

    def publish(self, topic: Topic | str, **data: Any) -> None:
        topic = self._declared(topic)
        if isinstance(topic, Topic):
            self._refuse(problems(topic, data))
        event = Event(topic, data)
        with self._lock:
            targets = [s for t, s in self._subscribers if t is None or t == topic]
        for subscriber in targets:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, topic)

    def _declared(self, topic: Topic | str) -> Topic | str:
        try:
            return topic_of(topic)
        except EventContractError as exc:
            self._refuse([str(exc)])
            return topic

    def _refuse(self, found: list[str]) -> None:
        if not found:
            return
        if self.strict:
            raise EventContractError("; ".join(found))
        log.error("event contract broken: %s", "; ".join(found))
