"""Front-panel buttons: four gpiozero input devices (up, down, ok, back) with debounce and long
press.

A short press is reported when the button is released before `long_press` seconds; holding it
longer reports one long press (and, for up/down, repeats every `long_press` seconds while held
so a technician can scroll quickly through characters). Wiring: each button connects its GPIO
to ground; the internal pull-up is used.

The long press is timed by a short-lived thread per press that waits for the release (an
event) with the long-press time as its timeout. gpiozero's `Button` would time it with a
thread per button that wakes ten times a second for as long as the box runs, pressed or not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gpiozero import DigitalInputDevice

log = logging.getLogger(__name__)

BUTTON_NAMES = ("up", "down", "ok", "back")

#: Called with (button name, long) for every press.
PressHandler = Callable[[str, bool], None]


class PanelButtons:
    """The four buttons. Presses go to the one `handler`."""

    def __init__(self, pins: dict[str, int], pin_factory, handler: PressHandler,
                 bounce_time: float = 0.05, long_press: float = 1.0,
                 repeating: tuple[str, ...] = ("up", "down")):
        self.handler = handler
        self.long_press = long_press
        self.repeating = repeating
        self._buttons: dict[str, DigitalInputDevice] = {}
        self._held: dict[str, bool] = {}
        self._released: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        try:
            for name in BUTTON_NAMES:
                button = DigitalInputDevice(pins[name], pull_up=True, bounce_time=bounce_time,
                                            pin_factory=pin_factory)
                button.when_activated = lambda _d, n=name: self._pressed(n)
                button.when_deactivated = lambda _d, n=name: self._release(n)
                self._buttons[name] = button
                self._held[name] = False
        except Exception:
            self.close()
            raise

    def button(self, name: str) -> DigitalInputDevice:
        return self._buttons[name]

    def _pressed(self, name: str) -> None:
        released = threading.Event()
        with self._lock:
            self._held[name] = False
            previous, self._released[name] = self._released.get(name), released
        if previous is not None:
            previous.set()
        threading.Thread(target=self._watch_hold, args=(name, released),
                         name=f"panel-hold-{name}", daemon=True).start()

    def _watch_hold(self, name: str, released: threading.Event) -> None:
        """Until `released` is set: one long press after `long_press` seconds, then (for a
        repeating button) one more every `long_press` seconds."""
        while not released.wait(self.long_press):
            with self._lock:
                if released.is_set():
                    return
                self._held[name] = True
            self._emit(name, True)
            if name not in self.repeating:
                return

    def _release(self, name: str) -> None:
        with self._lock:
            was_held, self._held[name] = self._held[name], False
            released = self._released.pop(name, None)
            if released is not None:
                released.set()
        if not was_held:
            self._emit(name, False)

    def _emit(self, name: str, long: bool) -> None:
        try:
            self.handler(name, long)
        except Exception:
            log.exception("panel: handling %s%s failed", "long " if long else "", name)

    def close(self) -> None:
        with self._lock:
            waiting, self._released = list(self._released.values()), {}
        for released in waiting:
            released.set()
        for button in self._buttons.values():
            try:
                button.close()
            except Exception:
                log.debug("closing button failed", exc_info=True)
        self._buttons.clear()
