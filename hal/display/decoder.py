"""A model of the HD44780 controller: feed it what was put on the wires, read back the text.

The `sim` backend uses it as its display (the panel's pin or I2C traffic is decoded exactly as
the real controller would latch it), and the tests use it to check the driver's sequences.
Only what the driver uses is modelled: the 8-bit/4-bit initialisation, function set, display
control, clear, home, entry mode (increment) and DDRAM writes.
"""

from __future__ import annotations

import logging
import threading

from hal.display.hd44780 import ROW_OFFSETS
from hal.errors import DisplayError

log = logging.getLogger(__name__)


class Hd44780Model:
    """The controller's state, driven nibble by nibble."""

    def __init__(self, cols: int = 16, rows: int = 2):
        if (cols, rows) not in ROW_OFFSETS:
            raise DisplayError(f"no HD44780 model for {cols}x{rows}")
        self.cols, self.rows = cols, rows
        self._lock = threading.Lock()
        self.ddram = bytearray(b" " * 0x80)
        self.address = 0
        self.four_bit = False
        self.display_on = False
        self.cursor_on = False
        self.backlight = True
        self.commands: list[int] = []  # every instruction byte, in order
        self._high: int | None = None

    def nibble(self, rs: bool, value: int) -> None:
        """One falling edge of E with RS and D4-D7 as given."""
        with self._lock:
            if not self.four_bit:
                # 8-bit mode: D0-D3 are not wired, so each nibble is a whole (instruction) byte.
                if not rs:
                    self._instruction(value << 4)
                return
            if self._high is None:
                self._high = value
                return
            byte, self._high = self._high << 4 | value, None
            if rs:
                self._data(byte)
            else:
                self._instruction(byte)

    def _instruction(self, byte: int) -> None:
        self.commands.append(byte)
        if byte & 0x80:
            self.address = byte & 0x7F
        elif byte & 0x20:
            self.four_bit = not byte & 0x10
        elif byte & 0x08:
            self.display_on = bool(byte & 0x04)
            self.cursor_on = bool(byte & 0x02)
        elif byte == 0x01:
            self.ddram[:] = b" " * 0x80
            self.address = 0
        elif byte & 0xFE == 0x02:
            self.address = 0

    def _data(self, byte: int) -> None:
        self.ddram[self.address] = byte
        # Two-line addressing: each line is 40 cells; the counter wraps from 0x27 to 0x40.
        self.address = {0x27: 0x40, 0x67: 0x00}.get(self.address, self.address + 1)

    @property
    def text(self) -> list[str]:
        """The rows as shown (a blank display when it is switched off)."""
        with self._lock:
            if not self.display_on:
                return [" " * self.cols] * self.rows
            offsets = ROW_OFFSETS[(self.cols, self.rows)]
            return [self.ddram[o:o + self.cols].decode("ascii", "replace") for o in offsets]

    @property
    def cursor(self) -> tuple[int, int] | None:
        """(row, col) of the visible cursor, or None."""
        with self._lock:
            if not (self.display_on and self.cursor_on):
                return None
            for row, offset in enumerate(ROW_OFFSETS[(self.cols, self.rows)]):
                if offset <= self.address < offset + self.cols:
                    return row, self.address - offset
            return None


class GpioWatcher:
    """Feeds a model from a SimPinFactory's trace: latches RS and D4-D7 when E falls."""

    def __init__(self, model: Hd44780Model, rs: int, e: int, data: tuple[int, int, int, int],
                 backlight: int | None = None):
        self.model = model
        self.rs, self.e, self.data, self.light = rs, e, tuple(data), backlight
        self._state: dict[int, bool] = {}

    def __call__(self, pin: int, state: bool) -> None:
        previous = self._state.get(pin, False)
        self._state[pin] = state
        if pin == self.e and previous and not state:
            value = sum(1 << i for i, d in enumerate(self.data) if self._state.get(d, False))
            self.model.nibble(self._state.get(self.rs, False), value)
        elif pin == self.light:
            self.model.backlight = state


class SimI2CBus:
    """Stands in for smbus2.SMBus: a PCF8574 at `address` whose byte writes drive a model."""

    def __init__(self, model: Hd44780Model, address: int = 0x27):
        self.model = model
        self.address = address
        self.writes: list[int] = []
        self._last = 0

    def write_byte(self, address: int, value: int) -> None:
        if address != self.address:
            raise OSError(121, f"no I2C device answers at 0x{address:02x}")  # EREMOTEIO
        self.writes.append(value)
        self.model.backlight = bool(value & 0x08)
        if self._last & 0x04 and not value & 0x04:
            self.model.nibble(bool(value & 0x01), value >> 4)
        self._last = value

    def close(self) -> None:
        pass
