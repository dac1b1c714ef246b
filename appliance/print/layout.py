"""Film geometry: film sizes, Image Display Format parsing and the rectangles of image and
annotation boxes on a film at a given resolution.

Image Box Position is 1-based: row-major for STANDARD and ROW, column-major for COL. Boxes tile
the printable area with no gap; annotation strips (when an Annotation Display Format is used)
take a band at the top and/or bottom of the film.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from appliance.core.errors import ApplianceError

log = logging.getLogger(__name__)

#: Film Size ID -> (width, height) in millimetres, portrait.
FILM_SIZES_MM: dict[str, tuple[float, float]] = {
    "8INX10IN": (203.2, 254.0),
    "8_5INX11IN": (215.9, 279.4),
    "10INX12IN": (254.0, 304.8),
    "10INX14IN": (254.0, 355.6),
    "11INX14IN": (279.4, 355.6),
    "11INX17IN": (279.4, 431.8),
    "14INX14IN": (355.6, 355.6),
    "14INX17IN": (355.6, 431.8),
    "24CMX24CM": (240.0, 240.0),
    "24CMX30CM": (240.0, 300.0),
    "A4": (210.0, 297.0),
    "A3": (297.0, 420.0),
}

MAX_BOXES = 100
#: Annotation Display Format ID -> (boxes in the top band, boxes in the bottom band).
ANNOTATION_FORMATS: dict[str, tuple[int, int]] = {
    "TOP": (1, 0), "BOTTOM": (0, 1), "TOP_BOTTOM": (1, 1), "CORNERS": (2, 2),
}
ANNOTATION_BAND_MM = 8.0


class LayoutError(ApplianceError, ValueError):
    """An Image Display Format or film size this printer cannot lay out."""


@dataclass(frozen=True)
class DisplayFormat:
    """A parsed Image Display Format: `kind` STANDARD/ROW/COL and boxes per row or column."""

    kind: str
    counts: tuple[int, ...]

    @property
    def box_count(self) -> int:
        return sum(self.counts)


def parse_display_format(text: str) -> DisplayFormat:
    """`STANDARD\\C,R`, `ROW\\r1,r2,...` or `COL\\c1,c2,...` -> DisplayFormat."""
    value = str(text).strip().upper()
    match = re.fullmatch(r"(STANDARD|ROW|COL)\\(\d+(?:,\d+)*)", value)
    if not match:
        raise LayoutError(f"Image Display Format {text!r} is not STANDARD\\C,R, ROW\\r1,r2,... "
                          "or COL\\c1,c2,...")
    kind, numbers = match.group(1), tuple(int(n) for n in match.group(2).split(","))
    if any(n < 1 for n in numbers):
        raise LayoutError(f"Image Display Format {text!r} has a zero count")
    if kind == "STANDARD":
        if len(numbers) != 2:
            raise LayoutError(f"Image Display Format {text!r}: STANDARD needs columns,rows")
        columns, rows = numbers
        fmt = DisplayFormat(kind, (columns,) * rows)
    else:
        fmt = DisplayFormat(kind, numbers)
    if fmt.box_count > MAX_BOXES:
        raise LayoutError(f"Image Display Format {text!r} has {fmt.box_count} boxes; at most "
                          f"{MAX_BOXES} are supported")
    return fmt


@dataclass(frozen=True)
class Box:
    """A rectangle on the film in pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int


def film_pixels(film_size_id: str, orientation: str, dpi: int) -> tuple[int, int, float, float]:
    """(width px, height px, width mm, height mm) of a film at `dpi`."""
    try:
        width_mm, height_mm = FILM_SIZES_MM[film_size_id]
    except KeyError:
        raise LayoutError(f"unknown Film Size ID {film_size_id!r}") from None
    if orientation == "LANDSCAPE":
        width_mm, height_mm = height_mm, width_mm
    return (round(width_mm / 25.4 * dpi), round(height_mm / 25.4 * dpi), width_mm, height_mm)


def _split(start: int, length: int, parts: int) -> list[tuple[int, int]]:
    """Cut [start, start+length) into `parts` near-equal (offset, size) pieces."""
    edges = [start + round(length * i / parts) for i in range(parts + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(parts)]


def annotation_bands(annotation_format: str, width: int, height: int, dpi: int
                     ) -> tuple[list[Box], int, int]:
    """The annotation boxes (numbered top band first, left to right) and the heights of the
    top and bottom bands they take from the film."""
    if not annotation_format:
        return [], 0, 0
    top_count, bottom_count = ANNOTATION_FORMATS[annotation_format]
    band = round(ANNOTATION_BAND_MM / 25.4 * dpi)
    top_h, bottom_h = (band if top_count else 0), (band if bottom_count else 0)
    boxes = [Box(x, 0, w, top_h) for x, w in _split(0, width, top_count)] if top_count else []
    if bottom_count:
        boxes += [Box(x, height - bottom_h, w, bottom_h)
                  for x, w in _split(0, width, bottom_count)]
    return boxes, top_h, bottom_h


def image_boxes(fmt: DisplayFormat, width: int, height: int, top: int = 0,
                bottom: int = 0) -> list[Box]:
    """Rectangles of the image boxes in Image Box Position order."""
    area_h = height - top - bottom
    boxes: list[Box] = []
    if fmt.kind in ("STANDARD", "ROW"):
        for (y, h), count in zip(_split(top, area_h, len(fmt.counts)), fmt.counts, strict=True):
            boxes += [Box(x, y, w, h) for x, w in _split(0, width, count)]
    else:
        for (x, w), count in zip(_split(0, width, len(fmt.counts)), fmt.counts, strict=True):
            boxes += [Box(x, y, w, h) for y, h in _split(top, area_h, count)]
    return boxes
