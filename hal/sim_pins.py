"""Simulated GPIO for the `sim` backend: gpiozero's MockFactory whose pins also append every
change to one shared, ordered trace.

Each MockPin keeps its own history (`states`, `assert_states_and_times`), which is what LED
tests need. A character display is driven by several pins at once, so decoding what it shows
needs the order of changes across pins: that is the trace. The simulated display
(`hal.display.decoder`) replays it the way an HD44780 latches data on the falling edge of E.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gpiozero.pins.mock import MockFactory, MockPin

log = logging.getLogger(__name__)

PinListener = Callable[[int, bool], None]


class TracedMockPin(MockPin):
    """A MockPin that reports each state change to its factory's listeners."""

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            self.factory.notify_change(self.info.name, bool(value))
        return changed


class SimPinFactory(MockFactory):
    """MockFactory with traced pins. Listeners get (GPIO number, new state) in order."""

    def __init__(self, revision: str | None = None):
        super().__init__(revision=revision, pin_class=TracedMockPin)
        self._listeners: list[PinListener] = []
        self._listen_lock = threading.Lock()

    def listen(self, listener: PinListener) -> None:
        with self._listen_lock:
            self._listeners.append(listener)

    def notify_change(self, name: str, state: bool) -> None:
        number = gpio_number(name)
        with self._listen_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(number, state)


def gpio_number(name: str) -> int:
    """'GPIO17' -> 17."""
    return int(name[4:]) if name.startswith("GPIO") else int(name)
