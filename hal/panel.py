"""Front-panel buttons: four gpiozero Buttons (up, down, ok, back) with debounce and long press.

A short press is reported when the button is released before `long_press` seconds; holding it
longer reports one long press (and, for up/down, repeats every `repeat` seconds while held so
a technician can scroll quickly through characters). Wiring: each button connects its GPIO
to ground; the internal pull-up is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gpiozero import Button

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
        self._buttons: dict[str, Button] = {}
        self._held: dict[str, bool] = {}
        self._lock = threading.Lock()
        try:
            for name in BUTTON_NAMES:
                button = Button(pins[name], pull_up=True, bounce_time=bounce_time,
                                hold_time=long_press, hold_repeat=name in repeating,
                                pin_factory=pin_factory)
                button.when_pressed = lambda _d, n=name: self._pressed(n)
                button.when_held = lambda _d, n=name: self._hold(n)
                button.when_released = lambda _d, n=name: self._released(n)
                self._buttons[name] = button
                self._held[name] = False
        except Exception:
            self.close()
            raise

    def button(self, name: str) -> Button:
        return self._buttons[name]

    def _pressed(self, name: str) -> None:
        with self._lock:
            self._held[name] = False

    def _hold(self, name: str) -> None:
        with self._lock:
            self._held[name] = True
        self._emit(name, True)

    def _released(self, name: str) -> None:
        with self._lock:
            was_held, self._held[name] = self._held[name], False
        if not was_held:
            self._emit(name, False)

    def _emit(self, name: str, long: bool) -> None:
        try:
            self.handler(name, long)
        except Exception:
            log.exception("panel: handling %s%s failed", "long " if long else "", name)

    def close(self) -> None:
        for button in self._buttons.values():
            try:
                button.close()
            except Exception:
                log.debug("closing button failed", exc_info=True)
        self._buttons.clear()
