"""The `file` printer: each film becomes a PNG at full resolution and a PDF page at the
physical film size, written atomically into a directory (the default printer of a fresh box).

File names are `<job>-<page>.png` / `.pdf`, the whole job identifier kept (a job UID has dots:
none of them starts a file extension); copies are not duplicated on disk.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from hal.printer.interface import Film, Printer, PrinterError, PrinterState

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 50 * 1024 * 1024


class FilePrinter(Printer):
    driver = "file"

    def __init__(self, name: str, directory: str | os.PathLike = "print", pdf: bool = True,
                 png_compression: int = 1, **_ignored):
        super().__init__(name)
        self.directory = Path(directory)
        self.pdf = pdf
        self.png_compression = png_compression

    def status(self) -> PrinterState:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return PrinterState("FAILURE", "PRINTER DOWN", f"cannot create {self.directory}: "
                                f"{exc.strerror or exc}")
        if not os.access(self.directory, os.W_OK):
            return PrinterState("FAILURE", "PRINTER DOWN", f"{self.directory} is not writable")
        if shutil.disk_usage(self.directory).free < MIN_FREE_BYTES:
            return PrinterState("FAILURE", "RECEIVER FULL", f"{self.directory} is nearly full")
        return PrinterState()

    def paths_for(self, job_id: str, page: int) -> tuple[Path, Path]:
        """Where the PNG and the PDF of one film page go: one pair per job and page."""
        stem = f"{_safe_name(job_id)}-{page}"
        return self.directory / f"{stem}.png", self.directory / f"{stem}.pdf"

    def print_film(self, film: Film) -> None:
        png, pdf = self.paths_for(film.job_id, film.page)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _save(png, lambda f: film.image.save(f, format="PNG", dpi=(film.dpi, film.dpi),
                                                  compress_level=self.png_compression))
            if self.pdf:
                # resolution makes the page exactly the film's physical size
                _save(pdf, lambda f: film.image.save(f, format="PDF", resolution=film.dpi,
                                                      title=film.label or film.job_id))
        except OSError as exc:
            raise PrinterError(f"cannot write {png.name}: {exc.strerror or exc}") from exc
        log.info("printed film %s page %d to %s", film.job_id, film.page, png)


def _safe_name(job_id: str) -> str:
    """A job identifier as one file name: UIDs pass unchanged; a path separator, a leading dot
    or a control character (not in any UID we make, but the driver takes any string) cannot
    place the file elsewhere or hide it."""
    name = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in job_id)
    return name.lstrip(".") or "job"


def _save(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
