"""Status LEDs: a few gpiozero LEDs, each showing one `LedSignal` (off, on, or blinking).

The hardware layer only knows how to show a signal; which signal means what (booting, ready,
fault, identify, ...) is decided by the appliance and documented in the README. Setting the
signal an LED already shows does nothing, so a blink keeps its rhythm when the picture is
re-evaluated.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from gpiozero import LED

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedSignal:
    """Off, steadily on, or blinking `on_time` seconds on then `off_time` seconds off."""

    on: bool = False
    on_time: float = 0.0
    off_time: float = 0.0

    @property
    def blinking(self) -> bool:
        return self.on and self.on_time > 0 and self.off_time > 0

    def __str__(self) -> str:
        if self.blinking:
            return f"blink {self.on_time:g}s on / {self.off_time:g}s off"
        return "on" if self.on else "off"


OFF = LedSignal(False)
ON = LedSignal(True)


def blink(on_time: float, off_time: float) -> LedSignal:
    return LedSignal(True, on_time, off_time)


class StatusLeds:
    """Named LEDs on GPIO pins. `show(name, signal)` is the one verb."""

    def __init__(self, pins: dict[str, int], pin_factory, active_high: bool = True):
        self._lock = threading.Lock()
        self._leds: dict[str, LED] = {}
        self._shown: dict[str, LedSignal] = {}
        try:
            for name, pin in pins.items():
                self._leds[name] = LED(pin, active_high=active_high, initial_value=False,
                                       pin_factory=pin_factory)
                self._shown[name] = OFF
        except Exception:
            self.close()
            raise

    @property
    def names(self) -> list[str]:
        return list(self._leds)

    def led(self, name: str) -> LED:
        return self._leds[name]

    def shown(self, name: str) -> LedSignal:
        return self._shown[name]

    def show(self, name: str, signal: LedSignal) -> None:
        with self._lock:
            led = self._leds[name]
            if self._shown[name] == signal:
                return
            self._shown[name] = signal
            if signal.blinking:
                led.blink(on_time=signal.on_time, off_time=signal.off_time, background=True)
            elif signal.on:
                led.on()
            else:
                led.off()
        log.debug("LED %s: %s", name, signal)

    def close(self) -> None:
        with self._lock:
            for led in self._leds.values():
                try:
                    led.close()
                except Exception:  # closing is best effort; the process may be ending
                    log.debug("closing LED failed", exc_info=True)
            self._leds.clear()
