"""Film rendering with numpy and Pillow: a `FilmSpec` (what the film box and its image and
annotation boxes say) becomes one image of driving values at the printer's resolution.

Each image is first turned into driving values at its own size (a table lookup over every
possible pixel value), then scaled into its box with the box's Magnification Type and centred.
Requested Image Size sets the printed width; an image larger than its box is decimated,
cropped or refused according to Requested Decimate/Crop Behavior (see `place_image`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from appliance.core.errors import ApplianceError
from appliance.print import layout
from appliance.print.lut import PresentationLut, densities, driving_values

log = logging.getLogger(__name__)

FILTERS = {"REPLICATE": Image.Resampling.NEAREST, "NONE": Image.Resampling.NEAREST,
           "BILINEAR": Image.Resampling.BILINEAR, "CUBIC": Image.Resampling.BICUBIC}
# Print status codes a placement can give (PS3.4 H.4.3.1.2.1)
DEMAGNIFIED, CROPPED, DECIMATED, TOO_LARGE = 0xB604, 0xB609, 0xB60A, 0xC603
TRIM_MM = 0.5


class PlacementError(ApplianceError, ValueError):
    """The image does not fit its box and Requested Decimate/Crop Behavior is FAIL."""


@dataclass
class ImageContent:
    """One image box's pixels and the box's presentation attributes."""

    pixels: np.ndarray                      # rows x columns (x 3 for RGB)
    bits_stored: int = 8
    photometric: str = "MONOCHROME2"
    polarity: str = "NORMAL"
    magnification: str = ""                 # "" = the film box's
    requested_size_mm: float = 0.0          # printed width; 0 = fit the box
    decimate_crop: str = "DECIMATE"
    aspect: float = 1.0                     # pixel aspect ratio, vertical / horizontal


@dataclass
class FilmSpec:
    """Everything needed to render one film."""

    display_format: layout.DisplayFormat
    film_size_id: str = "14INX17IN"
    orientation: str = "PORTRAIT"
    dpi: int = 300
    color: bool = False
    magnification: str = "BILINEAR"
    border_density: float = 0.0             # optical density
    empty_density: float = 0.0
    min_density: float = 0.2
    max_density: float = 3.0
    printer_min_density: float = 0.2
    printer_max_density: float = 3.0
    trim: bool = False
    illumination: float = 2000.0
    ambient: float = 10.0
    lut: PresentationLut = field(default_factory=PresentationLut)
    annotation_format: str = ""
    images: dict[int, ImageContent] = field(default_factory=dict)
    annotations: dict[int, str] = field(default_factory=dict)

    def geometry(self) -> tuple[int, int, list[layout.Box], list[layout.Box]]:
        """(width, height, image boxes, annotation boxes) in pixels."""
        width, height, _, _ = layout.film_pixels(self.film_size_id, self.orientation, self.dpi)
        notes, top, bottom = layout.annotation_bands(self.annotation_format, width, height,
                                                     self.dpi)
        return width, height, layout.image_boxes(self.display_format, width, height, top,
                                                 bottom), notes


@dataclass(frozen=True)
class Placement:
    """Where an image goes in its box: scaled size, whether it is cropped, and the warning."""

    width: int
    height: int
    crop: bool
    status: int = 0


def place_image(rows: int, columns: int, aspect: float, box: layout.Box, magnification: str,
                requested_size_mm: float, dpi: int, decimate_crop: str) -> Placement:
    """Scale of an image in a box. Raises `PlacementError` when it cannot fit and the SCU
    asked to FAIL rather than decimate or crop."""
    def fit() -> float:
        return min(box.width / columns, box.height / (rows * aspect))

    if requested_size_mm:
        scale = requested_size_mm / 25.4 * dpi / columns
    elif magnification == "NONE":
        scale = 1.0
    else:
        scale = fit()
    width, height = round(columns * scale), round(rows * aspect * scale)
    if width > box.width or height > box.height:
        if decimate_crop == "FAIL":
            raise PlacementError(f"the image ({width}x{height} px at the requested size) is "
                                 f"larger than its box ({box.width}x{box.height} px)")
        if decimate_crop == "CROP":
            return Placement(width, height, True, CROPPED)
        scale = fit()
        return Placement(max(1, round(columns * scale)), max(1, round(rows * aspect * scale)),
                         False, DECIMATED)
    return Placement(max(1, width), max(1, height), False,
                     DEMAGNIFIED if scale < 1 and not requested_size_mm else 0)


def _density_dv(spec: FilmSpec, density: float) -> int:
    clamped = min(max(density, spec.min_density), spec.max_density)
    return int(driving_values(clamped, spec.printer_min_density, spec.printer_max_density))


def _grey_image(spec: FilmSpec, content: ImageContent) -> Image.Image:
    levels = 1 << content.bits_stored
    pixels = np.clip(content.pixels, 0, levels - 1)
    reverse = content.polarity == "REVERSE"
    if content.photometric == "MONOCHROME1":
        reverse = not reverse
    table = driving_values(
        densities(levels, spec.lut, reverse, spec.min_density, spec.max_density,
                  spec.illumination, spec.ambient),
        spec.printer_min_density, spec.printer_max_density)
    return Image.fromarray(table[pixels.astype(np.intp)], mode="L")


def _color_image(content: ImageContent) -> Image.Image:
    pixels = np.clip(content.pixels, 0, 255).astype(np.uint8)
    if content.polarity == "REVERSE":
        pixels = 255 - pixels
    return Image.fromarray(pixels, mode="RGB")


def render_image_into(film: Image.Image, spec: FilmSpec, box: layout.Box,
                      content: ImageContent, trim_dv: int) -> None:
    rows, columns = content.pixels.shape[:2]
    magnification = content.magnification or spec.magnification
    placement = place_image(rows, columns, content.aspect, box, magnification,
                            content.requested_size_mm, spec.dpi, content.decimate_crop)
    if content.pixels.ndim == 3:
        source = _color_image(content)
    else:
        source = _grey_image(spec, content)
        if spec.color:
            source = source.convert("RGB")
    scaled = source.resize((placement.width, placement.height),
                           FILTERS.get(magnification, Image.Resampling.BILINEAR))
    if placement.crop:
        left = max(0, (placement.width - box.width) // 2)
        top = max(0, (placement.height - box.height) // 2)
        scaled = scaled.crop((left, top, left + min(box.width, placement.width),
                              top + min(box.height, placement.height)))
    x = box.x + (box.width - scaled.width) // 2
    y = box.y + (box.height - scaled.height) // 2
    if spec.trim:
        t = max(1, round(TRIM_MM / 25.4 * spec.dpi))
        fill = (trim_dv,) * 3 if spec.color else trim_dv
        ImageDraw.Draw(film).rectangle(
            (max(box.x, x - t), max(box.y, y - t),
             min(box.x + box.width, x + scaled.width + t) - 1,
             min(box.y + box.height, y + scaled.height + t) - 1), fill=fill)
    film.paste(scaled, (x, y))


def _annotate(film: Image.Image, spec: FilmSpec, boxes: list[layout.Box], border_dv: int
              ) -> None:
    draw = ImageDraw.Draw(film)
    ink = 0 if border_dv >= 128 else 255
    fill = (ink,) * 3 if spec.color else ink
    for position, text in spec.annotations.items():
        if not text or not 1 <= position <= len(boxes):
            continue
        box = boxes[position - 1]
        font = ImageFont.load_default(size=max(8, int(box.height * 0.6)))
        draw.text((box.x + box.width // 2, box.y + box.height // 2), text, fill=fill,
                  font=font, anchor="mm")


def render_film(spec: FilmSpec) -> Image.Image:
    """The whole film as an 8-bit grey ("L") or RGB Pillow image at `spec.dpi`."""
    width, height, boxes, notes = spec.geometry()
    border_dv = _density_dv(spec, spec.border_density)
    empty_dv = _density_dv(spec, spec.empty_density)
    trim_dv = _density_dv(spec, spec.max_density if border_dv >= 128 else spec.min_density)
    mode, colour = ("RGB", (border_dv,) * 3) if spec.color else ("L", border_dv)
    film = Image.new(mode, (width, height), colour)
    for position, box in enumerate(boxes, start=1):
        content = spec.images.get(position)
        if content is None:
            film.paste((empty_dv,) * 3 if spec.color else empty_dv,
                       (box.x, box.y, box.x + box.width, box.y + box.height))
        else:
            render_image_into(film, spec, box, content, trim_dv)
    if notes:
        _annotate(film, spec, notes, border_dv)
    return film
