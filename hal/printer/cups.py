"""The `cups` printer: submits each film to a CUPS queue with `lp` (media = the film size,
resolution = the film's dpi, copies) and maps the queue's state and reasons, read with
`lpstat`/`lpoptions`, to DICOM Printer Status and Printer Status Info."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile

from hal.printer.interface import Film, Printer, PrinterError, PrinterState

log = logging.getLogger(__name__)

#: CUPS printer-state-reasons keyword (without -error/-warning/-report) -> Printer Status Info
REASONS = {
    "media-empty": ("FAILURE", "SUPPLY EMPTY"), "media-needed": ("FAILURE", "SUPPLY EMPTY"),
    "media-jam": ("FAILURE", "FILM JAM"), "door-open": ("FAILURE", "COVER OPEN"),
    "cover-open": ("FAILURE", "COVER OPEN"), "output-area-full": ("FAILURE", "RECEIVER FULL"),
    "media-low": ("WARNING", "SUPPLY LOW"), "toner-low": ("WARNING", "SUPPLY LOW"),
    "toner-empty": ("FAILURE", "SUPPLY EMPTY"), "marker-supply-empty": ("FAILURE",
                                                                        "SUPPLY EMPTY"),
    "offline": ("FAILURE", "PRINTER OFFLINE"), "shutdown": ("FAILURE", "PRINTER DOWN"),
    "paused": ("FAILURE", "PRINTER DOWN"),
}
PWG_MEDIA = {"A4": "iso_a4_210x297mm", "A3": "iso_a3_297x420mm",
             "8_5INX11IN": "na_letter_8.5x11in"}


class CupsPrinter(Printer):
    driver = "cups"

    def __init__(self, name: str, queue: str = "", server: str = "",
                 document_format: str = "pdf", timeout: float = 30.0, **_ignored):
        super().__init__(name)
        if not queue:
            raise PrinterError("the cups driver needs a queue name")
        self.queue, self.server, self.format, self.timeout = queue, server, document_format, \
            timeout

    def _run(self, *args: str) -> str:
        cmd = [args[0], *(["-h", self.server] if self.server else []), *args[1:]]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout,
                                  env={**os.environ, "LC_ALL": "C"})
        except FileNotFoundError:
            raise PrinterError(f"{args[0]} is not installed (Debian package cups-client)") \
                from None
        except subprocess.TimeoutExpired:
            raise PrinterError(f"{args[0]}: no answer from CUPS within {self.timeout:g}s") \
                from None
        if done.returncode != 0:
            raise PrinterError(f"{args[0]}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def status(self) -> PrinterState:
        try:
            options = dict(item.split("=", 1) for item in
                           self._run("lpoptions", "-p", self.queue).split() if "=" in item)
        except PrinterError as exc:
            return PrinterState("FAILURE", "PRINTER DOWN", str(exc))
        state = options.get("printer-state", "3")
        reasons = [r for r in options.get("printer-state-reasons", "none").split(",")
                   if r and r != "none"]
        worst = PrinterState()
        for reason in reasons:
            base = reason.removesuffix("-error").removesuffix("-warning").removesuffix("-report")
            if base in REASONS:
                status, info = REASONS[base]
                if worst.status != "FAILURE":
                    worst = PrinterState(status, info, f"CUPS: {reason}")
        if state == "5" and worst.status != "FAILURE":   # stopped
            worst = PrinterState("FAILURE", "PRINTER DOWN", "CUPS queue stopped")
        return worst

    def media(self, film: Film) -> str:
        if film.film_size_id in PWG_MEDIA:
            return PWG_MEDIA[film.film_size_id]
        return f"Custom.{film.width_mm:g}x{film.height_mm:g}mm"

    def print_film(self, film: Film) -> None:
        suffix = ".pdf" if self.format == "pdf" else ".png"
        with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
            if self.format == "pdf":
                film.image.save(handle, format="PDF", resolution=film.dpi)
            else:
                film.image.save(handle, format="PNG", dpi=(film.dpi, film.dpi))
            handle.flush()
            out = self._run("lp", "-d", self.queue, "-n", str(max(1, film.copies)),
                            "-t", f"{film.job_id}-{film.page}", "-o", f"media={self.media(film)}",
                            "-o", f"Resolution={film.dpi}dpi", "-o",
                            f"printer-resolution={film.dpi}dpi", handle.name)
        log.info("film %s page %d sent to CUPS queue %s: %s", film.job_id, film.page,
                 self.queue, out.strip())
