"""HD44780 character display (16x2 or 20x4) driven in 4-bit mode.

Two ways to reach the controller, behind one small `bus` interface (`write_nibble(rs,
nibble)` and `backlight(on)`):

- `GpioBus`: six gpiozero output pins (RS, E, D4-D7, with R/W tied to ground) and an optional
  backlight pin;
- `Pcf8574Bus`: the common I2C backpack (P0=RS, P1=R/W, P2=E, P3=backlight, P4-P7=D4-D7)
  through any object with `write_byte(address, value)` (smbus2.SMBus on the board).

The controller latches a nibble on the falling edge of E. The initialisation follows the
datasheet's "initialising by instruction" sequence for 4-bit mode (0x3, 0x3, 0x3, 0x2, then
function set), so the display starts correctly whatever state it was left in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gpiozero import DigitalOutputDevice

from hal.errors import DisplayError

log = logging.getLogger(__name__)

#: Supported geometries (columns, rows) and the DDRAM address where each row starts.
ROW_OFFSETS = {(16, 2): (0x00, 0x40), (20, 4): (0x00, 0x40, 0x14, 0x54)}

CLEAR, HOME, ENTRY_INCREMENT, DISPLAY_CONTROL = 0x01, 0x02, 0x06, 0x08
DISPLAY_ON, CURSOR_ON = 0x04, 0x02
FUNCTION_4BIT_2LINE = 0x28
SET_DDRAM = 0x80

Sleep = Callable[[float], None]


def to_rom(text: str) -> bytes:
    """Characters the A00 character ROM shows as themselves; anything else becomes '?'."""
    return bytes(ord(ch) if 0x20 <= ord(ch) <= 0x7D and ch != "\\" else ord("?")
                 for ch in text)


class GpioBus:
    """RS, E and D4-D7 on gpiozero output pins."""

    def __init__(self, rs: int, e: int, data: tuple[int, int, int, int], pin_factory,
                 backlight: int | None = None):
        self._devices: list[DigitalOutputDevice] = []
        try:
            self.rs = self._output(rs, pin_factory)
            self.e = self._output(e, pin_factory)
            self.data = [self._output(pin, pin_factory) for pin in data]
            self.light = self._output(backlight, pin_factory) if backlight is not None else None
        except Exception:
            self.close()
            raise

    def _output(self, pin: int, pin_factory) -> DigitalOutputDevice:
        device = DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory)
        self._devices.append(device)
        return device

    def write_nibble(self, rs: bool, nibble: int) -> None:
        self.rs.value = rs
        for bit, device in enumerate(self.data):
            device.value = bool(nibble >> bit & 1)
        self.e.on()
        self.e.off()  # data is latched on this falling edge

    def backlight(self, on: bool) -> None:
        if self.light is not None:
            self.light.value = on

    def close(self) -> None:
        for device in self._devices:
            device.close()
        self._devices.clear()


class Pcf8574Bus:
    """The PCF8574 I2C backpack; `i2c` is an smbus2.SMBus (or the simulated bus)."""

    RS, E, LIGHT = 0x01, 0x04, 0x08

    def __init__(self, i2c, address: int = 0x27):
        self.i2c = i2c
        self.address = address
        self._light = self.LIGHT
        self.i2c.write_byte(self.address, self._light)

    def write_nibble(self, rs: bool, nibble: int) -> None:
        byte = (nibble & 0x0F) << 4 | self._light | (self.RS if rs else 0)
        self.i2c.write_byte(self.address, byte | self.E)
        self.i2c.write_byte(self.address, byte)

    def backlight(self, on: bool) -> None:
        self._light = self.LIGHT if on else 0
        self.i2c.write_byte(self.address, self._light)

    def close(self) -> None:
        close = getattr(self.i2c, "close", None)
        if close is not None:
            close()


class Hd44780:
    """The display. `show(lines)` draws text, rewriting only the rows that changed."""

    def __init__(self, bus, cols: int = 16, rows: int = 2, sleep: Sleep = time.sleep):
        if (cols, rows) not in ROW_OFFSETS:
            raise DisplayError(f"an HD44780 display of {cols}x{rows} is not supported "
                               "(use 16x2 or 20x4)")
        self.bus, self.cols, self.rows = bus, cols, rows
        self._sleep = sleep
        self._lock = threading.Lock()
        self._shown: list[str] = [""] * rows
        self._cursor: tuple[int, int] | None = None
        self.lit = True
        self.initialise()

    def initialise(self) -> None:
        with self._lock:
            self._sleep(0.05)  # > 40 ms after power-on
            for wait in (0.005, 0.0002, 0.0002):
                self.bus.write_nibble(False, 0x3)
                self._sleep(wait)
            self.bus.write_nibble(False, 0x2)
            self._sleep(0.0002)
            self._command(FUNCTION_4BIT_2LINE)
            self._command(DISPLAY_CONTROL)
            self._command(CLEAR)
            self._sleep(0.002)
            self._command(ENTRY_INCREMENT)
            self._command(DISPLAY_CONTROL | DISPLAY_ON)
            self.bus.backlight(True)
            self._shown = [" " * self.cols] * self.rows
            self._cursor = None

    def _command(self, byte: int) -> None:
        self._write(False, byte)

    def _write(self, rs: bool, byte: int) -> None:
        self.bus.write_nibble(rs, byte >> 4)
        self.bus.write_nibble(rs, byte & 0x0F)
        self._sleep(0.00005)  # > 37 us per instruction

    def show(self, lines: list[str], cursor: tuple[int, int] | None = None) -> None:
        """Draw `lines` (cut or padded to the display); `cursor` (row, col) shows an underline
        cursor there, None hides it."""
        padded = [(lines[i] if i < len(lines) else "")[: self.cols].ljust(self.cols)
                  for i in range(self.rows)]
        with self._lock:
            moved = False
            for row, text in enumerate(padded):
                if text != self._shown[row]:
                    moved = True
                    self._command(SET_DDRAM | ROW_OFFSETS[(self.cols, self.rows)][row])
                    for byte in to_rom(text):
                        self._write(True, byte)
                    self._shown[row] = text
            if cursor is not None and (moved or cursor != self._cursor):
                row, col = cursor
                self._command(SET_DDRAM | ROW_OFFSETS[(self.cols, self.rows)][row] + col)
            if (cursor is None) != (self._cursor is None):
                self._command(DISPLAY_CONTROL | DISPLAY_ON | (0 if cursor is None else CURSOR_ON))
            self._cursor = cursor

    def backlight(self, on: bool) -> None:
        with self._lock:
            if on != self.lit:
                self.bus.backlight(on)
                self.lit = on

    @property
    def text(self) -> list[str]:
        """What the driver believes is on the screen."""
        return list(self._shown)

    def close(self) -> None:
        self.bus.close()
