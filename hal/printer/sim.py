"""The simulated printer: prints into memory, and its condition (out of film, jam, cover
open, ...) is changed by tests and by the front panel through `set_condition`.

Simulated printers register by name in `SIM_PRINTERS` so the front panel or a test can find
the one the running appliance uses.
"""

from __future__ import annotations

import logging
import threading

from hal.printer.interface import Film, Printer, PrinterError, PrinterState

log = logging.getLogger(__name__)

#: Printer Status Info defined term -> Printer Status, for the conditions the sim can show.
CONDITIONS = {
    "NORMAL": "NORMAL",
    "SUPPLY LOW": "WARNING",
    "RECEIVER FULL": "WARNING",
    "SUPPLY EMPTY": "FAILURE",
    "FILM JAM": "FAILURE",
    "COVER OPEN": "FAILURE",
    "PRINTER DOWN": "FAILURE",
}

SIM_PRINTERS: dict[str, SimPrinter] = {}


class SimPrinter(Printer):
    """Keeps the last `keep` films it printed in `printed`."""

    driver = "sim"

    def __init__(self, name: str, keep: int = 20, **_ignored):
        super().__init__(name)
        self._lock = threading.Lock()
        self._state = PrinterState()
        self.keep = keep
        self.printed: list[Film] = []
        SIM_PRINTERS[name] = self

    def set_condition(self, info: str, detail: str = "") -> None:
        """Show a condition: one of `CONDITIONS` (e.g. "FILM JAM"), or "NORMAL" to clear it."""
        info = info.upper()
        if info not in CONDITIONS:
            raise PrinterError(f"unknown printer condition {info!r}: use one of "
                               f"{', '.join(CONDITIONS)}")
        with self._lock:
            self._state = PrinterState(CONDITIONS[info], info, detail)
        log.info("simulated printer %s: %s", self.name, info)

    def status(self) -> PrinterState:
        with self._lock:
            return self._state

    def print_film(self, film: Film) -> None:
        state = self.status()
        if state.status == "FAILURE":
            raise PrinterError(f"simulated printer {self.name}: {state.info}")
        with self._lock:
            self.printed.extend([film] * max(1, film.copies))
            del self.printed[:-self.keep]

    def close(self) -> None:
        if SIM_PRINTERS.get(self.name) is self:
            del SIM_PRINTERS[self.name]
