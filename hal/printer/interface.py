"""What every printer driver offers, and what it is given to print.

A `Film` is a finished page: driving values (8-bit grey, 255 = least density, or RGB) at the
printer's resolution, with its physical size. A driver reports its condition as a
`PrinterState` in the words of DICOM Printer Status (NORMAL, WARNING, FAILURE) and Printer
Status Info defined terms (SUPPLY EMPTY, FILM JAM, COVER OPEN, PRINTER DOWN, ...), so the
print service can pass it on without knowing the driver.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from hal.errors import HalError

log = logging.getLogger(__name__)


class PrinterError(HalError, RuntimeError):
    """A film could not be printed, or a driver was configured wrongly; the message says why."""


@dataclass(frozen=True)
class PrinterState:
    """A printer's condition: `status` NORMAL/WARNING/FAILURE, `info` a Printer Status Info
    defined term, `detail` free text for logs and the status page."""

    status: str = "NORMAL"
    info: str = "NORMAL"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "FAILURE"


@dataclass
class Film:
    """One rendered film page."""

    image: Image.Image
    dpi: int
    width_mm: float
    height_mm: float
    film_size_id: str = ""
    medium: str = ""
    orientation: str = "PORTRAIT"
    copies: int = 1
    job_id: str = "film"
    page: int = 1
    label: str = ""
    #: Facts about where the film came from (calling AE title, session label, ...).
    info: dict[str, Any] = field(default_factory=dict)


class Printer(abc.ABC):
    """Base of every printer driver."""

    driver = "printer"

    def __init__(self, name: str):
        self.name = name

    @abc.abstractmethod
    def status(self) -> PrinterState:
        """The printer's condition now. Never raises: trouble is a FAILURE state."""

    @abc.abstractmethod
    def print_film(self, film: Film) -> None:
        """Print `film.copies` copies of the film; raise `PrinterError` if that failed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the driver holds."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
