"""Status LEDs: a few gpiozero LEDs, each showing one `LedSignal` (off, on, or blinking).

The hardware layer only knows how to show a signal; which signal means what (booting, ready,
fault, identify, ...) is decided by the appliance and documented in the README. Setting the
signal an LED already shows does nothing, so a blink keeps its rhythm when the picture is
re-evaluated.

Blinking is timed by one thread per `StatusLeds`, started with the first blink and kept until
`close()`: starting to blink, or stopping, is a pin write and a notify, not a thread started and
joined (gpiozero's `blink(background=True)` makes a thread per blink; the activity LED blinks
for every DICOM association, so that was most of the CPU an association cost the appliance).
Each blink keeps the rhythm of its start (the edges are computed from it, not slept one after
the other).
"""

from __future__ import annotations

import logging
import threading
import time
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
        #: name -> (signal, start): the LEDs blinking now, each from its first "on" edge.
        self._blinking: dict[str, tuple[LedSignal, float]] = {}
        self._wake = threading.Condition(self._lock)
        self._blinker: threading.Thread | None = None
        self._closed = False
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
                led.on()  # the first edge at once; the blinker makes the others
                self._blinking[name] = (signal, time.monotonic())
                self._start_blinker()
                self._wake.notify()
            else:
                self._blinking.pop(name, None)  # the blinker leaves it alone from now on
                if signal.on:
                    led.on()
                else:
                    led.off()
        log.debug("LED %s: %s", name, signal)

    def _start_blinker(self) -> None:
        """The blink thread, once (called with the lock held)."""
        if self._blinker is None and not self._closed:
            self._blinker = threading.Thread(target=self._blink_loop, name="status-leds",
                                             daemon=True)
            self._blinker.start()

    def _blink_loop(self) -> None:
        """Each blinking LED lit or dark as its rhythm says now; sleep until the next edge."""
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                next_edge: float | None = None
                for name, (signal, start) in list(self._blinking.items()):
                    period = signal.on_time + signal.off_time
                    phase = (now - start) % period
                    lit = phase < signal.on_time
                    try:
                        led = self._leds[name]
                        if bool(led.value) != lit:
                            led.value = lit
                    except Exception:  # a pin gone bad stops its blink, not the others'
                        log.exception("LED %s cannot blink", name)
                        del self._blinking[name]
                        continue
                    edge = now + ((signal.on_time if lit else period) - phase)
                    next_edge = edge if next_edge is None else min(next_edge, edge)
                self._wake.wait(None if next_edge is None else next_edge - now)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._blinking.clear()
            self._wake.notify()
            blinker, self._blinker = self._blinker, None
        if blinker is not None and blinker is not threading.current_thread():
            blinker.join(timeout=1.0)
        with self._lock:
            for led in self._leds.values():
                try:
                    led.close()
                except Exception:  # closing is best effort; the process may be ending
                    log.debug("closing LED failed", exc_info=True)
            self._leds.clear()
