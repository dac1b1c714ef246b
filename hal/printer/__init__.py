"""Film printers behind one interface: `status()` and `print_film(film)`.

One module per hardware driver: `file` (PNG + PDF), `cups` (a CUPS queue), `sim` (simulated
printer whose condition tests and the front panel can change). `open_printer` builds the
driver named in the configuration and never falls back to another one. The DICOM drivers
(`dicom`, a Print SCU, and `pacs`, film as Secondary Capture) belong to the print service
(appliance/print/), which opens them itself and hands every other name to `open_printer`.
"""

from __future__ import annotations

from hal.printer.interface import Film, Printer, PrinterError, PrinterState

DRIVERS = ("file", "cups", "sim")


def open_printer(driver: str, name: str, **options) -> Printer:
    """The printer driver called `driver` with its options; a clear error for an unknown one."""
    if driver == "file":
        from hal.printer.file import FilePrinter
        return FilePrinter(name, **options)
    if driver == "cups":
        from hal.printer.cups import CupsPrinter
        return CupsPrinter(name, **options)
    if driver == "sim":
        from hal.printer.sim import SimPrinter
        return SimPrinter(name, **options)
    raise PrinterError(f"unknown printer driver {driver!r}: use one of {', '.join(DRIVERS)}")


__all__ = ["DRIVERS", "Film", "Printer", "PrinterError", "PrinterState", "open_printer"]
