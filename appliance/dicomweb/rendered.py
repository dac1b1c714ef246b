"""WADO-RS rendered frames (PS3.18 10.4.1.1.3 / 8.3.5): one frame of a stored instance as a
PNG at its own size, for a viewer that cannot read DICOM.

Greyscale: the Modality LUT (Rescale Slope/Intercept), then the data set's first Window Center
and Width (the linear VOI function of PS3.3 C.11.2.1.2.1), or, without a window, the frame's
own minimum to maximum, onto 8 bits; MONOCHROME1 is inverted so that it shows as it should.
Colour (RGB, YBR converted to RGB by pydicom, PALETTE COLOR through its palette) is scaled to
8 bits per sample. The print service's renderer (appliance/print/render.py) maps values to film
densities through the print Presentation LUT, which is not what a screen wants, so it is not
used here. Only the frame asked for is decoded; compressed transfer syntaxes need the decoder
pydicom uses for them (Pillow for JPEG baseline); what cannot be decoded is a NotAcceptable.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

from appliance.dicomweb.errors import NotAcceptable, NotFound

log = logging.getLogger(__name__)

PNG = "image/png"


def check_accept(ranges: list[tuple[str, dict[str, str]]]) -> None:
    """The client takes image/png (or anything), or NotAcceptable."""
    if not any(kind in ("*/*", "image/*", PNG) for kind, _ in ranges):
        raise NotAcceptable(f"a rendered frame is offered only as {PNG}")


def _first(value) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _grey(frame: np.ndarray, ds) -> np.ndarray:
    values = apply_modality_lut(frame, ds).astype(np.float64)
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        if width == 1:
            out = np.where(values <= center - 0.5, 0.0, 255.0)
        else:
            out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    else:
        low, high = float(values.min()), float(values.max())
        out = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        out = 255 - out
    return out


def _colour(frame: np.ndarray, ds) -> np.ndarray:
    if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
        bits = 16 if frame.dtype.itemsize > 1 else 8
    else:
        bits = int(ds.get("BitsStored", 8) or 8)
    if bits > 8:
        frame = frame.astype(np.float64) / ((1 << bits) - 1) * 255.0
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def render_png(path: Path, frame_number: int) -> bytes:
    """Frame `frame_number` (from 1) of the instance at `path` as PNG bytes."""
    ds = dcmread(path, defer_size=256)
    if "PixelData" not in ds:
        raise NotFound("the instance has no Pixel Data to render")
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
    if not 1 <= frame_number <= frames:
        raise NotFound(f"no frame {frame_number}: the instance has {frames} "
                       f"frame{'s' if frames != 1 else ''}")
    try:
        frame = pixel_array(path, index=frame_number - 1)
    except Exception as exc:  # no decoder for this transfer syntax, or damaged pixel data
        raise NotAcceptable(f"cannot decode the pixel data "
                            f"({ds.file_meta.get('TransferSyntaxUID', '?')}): {exc}") from None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    palette = str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR"
    pixels = _colour(frame, ds) if samples == 3 or palette else _grey(frame, ds)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()
