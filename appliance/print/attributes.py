"""Reading print attributes out of N-CREATE / N-SET data sets: each reader checks the value
against the standard's enumerated values or the printer profile and raises `PrintStatus`
(0x0106 invalid attribute value) with a sentence naming the attribute; an attribute we do not
know is reported as a warning (0x0107) and ignored."""

from __future__ import annotations

import logging

import numpy as np
from pydicom import Dataset

from appliance.print import dimse_status as st
from appliance.print.lut import LutError, PresentationLut

log = logging.getLogger(__name__)

BOOLEAN = ("YES", "NO")
MAGNIFICATIONS = ("REPLICATE", "BILINEAR", "CUBIC", "NONE")
POLARITIES = ("NORMAL", "REVERSE")
PRIORITIES = ("HIGH", "MED", "LOW")
ORIENTATIONS = ("PORTRAIT", "LANDSCAPE")
DECIMATE_CROP = ("DECIMATE", "CROP", "FAIL")


def text(ds: Dataset, keyword: str, default: str = "") -> str:
    value = ds.get(keyword)
    return default if value in (None, "") else str(value).strip()


def enum(ds: Dataset, keyword: str, allowed, default: str = "") -> str:
    value = text(ds, keyword, default).upper()
    if value and value not in allowed:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE,
                             f"{keyword} {value!r} is not one of {', '.join(allowed)}")
    return value


def integer(ds: Dataset, keyword: str, low: int, high: int, default: int) -> int:
    if ds.get(keyword) in (None, ""):
        return default
    try:
        value = int(ds.get(keyword))
    except (TypeError, ValueError):
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"{keyword} is not a number") from None
    if not low <= value <= high:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE,
                             f"{keyword} {value} is not between {low} and {high}")
    return value


def number(ds: Dataset, keyword: str, default: float) -> float:
    if ds.get(keyword) in (None, ""):
        return default
    try:
        value = float(ds.get(keyword))
    except (TypeError, ValueError):
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"{keyword} is not a number") from None
    if value < 0:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"{keyword} must not be negative")
    return value


def density(ds: Dataset, keyword: str, black: float, white: float, default: float) -> float:
    """Border/Empty Image Density: BLACK, WHITE or hundredths of OD -> OD."""
    value = text(ds, keyword).upper()
    if not value:
        return default
    if value == "BLACK":
        return black
    if value == "WHITE":
        return white
    if value.isdigit():
        return int(value) / 100
    raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE,
                         f"{keyword} {value!r} is not BLACK, WHITE or hundredths of OD")


def check_known(ds: Dataset, known: set[str], warnings: st.Warnings) -> None:
    """Warn (0x0107) about attributes this SCP does not support; they are ignored."""
    unknown = sorted(elem.keyword or str(elem.tag) for elem in ds
                     if elem.keyword not in known)
    if unknown:
        warnings.add(st.ATTRIBUTE_LIST_ERROR, "ignored: " + ", ".join(unknown))


def referenced_uid(ds: Dataset, keyword: str) -> str:
    seq = ds.get(keyword)
    if not seq:
        return ""
    return str(getattr(seq[0], "ReferencedSOPInstanceUID", "") or "")


def presentation_lut(ds: Dataset) -> PresentationLut:
    """A Presentation LUT N-CREATE: a shape, or one item of LUT Descriptor + LUT Data."""
    shape = text(ds, "PresentationLUTShape").upper()
    seq = ds.get("PresentationLUTSequence")
    if shape and seq:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE,
                             "give Presentation LUT Shape or Presentation LUT Sequence, not both")
    if shape:
        if shape not in ("IDENTITY", "LIN OD"):
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE,
                                 f"Presentation LUT Shape {shape!r} is not IDENTITY or LIN OD")
        return PresentationLut(shape)
    if not seq:
        raise st.PrintStatus(st.MISSING_ATTRIBUTE,
                             "Presentation LUT Shape or Presentation LUT Sequence is required")
    item = seq[0]
    if "LUTDescriptor" not in item or "LUTData" not in item:
        raise st.PrintStatus(st.MISSING_ATTRIBUTE, "LUT Descriptor and LUT Data are required")
    data = item.LUTData
    if isinstance(data, bytes):
        data = np.frombuffer(data, dtype="<u2").tolist()
    elif isinstance(data, int):
        data = [data]
    try:
        return PresentationLut.explicit(item.LUTDescriptor, data)
    except LutError as exc:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, str(exc)) from exc


def pixel_array(item: Dataset, color: bool) -> tuple[np.ndarray, int, str]:
    """Validate a Basic Grayscale/Color Image Sequence item: (pixels, bits stored,
    photometric interpretation)."""
    def need(keyword: str):
        if keyword not in item or item.get(keyword) in (None, ""):
            raise st.PrintStatus(st.MISSING_ATTRIBUTE, f"the image item has no {keyword}")
        return item.get(keyword)

    samples, photometric = int(need("SamplesPerPixel")), str(need("PhotometricInterpretation"))
    rows, columns = int(need("Rows")), int(need("Columns"))
    allocated, stored = int(need("BitsAllocated")), int(need("BitsStored"))
    high_bit = int(item.get("HighBit", stored - 1))
    if int(item.get("PixelRepresentation", 0)) != 0:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "Pixel Representation must be 0")
    if color:
        if samples != 3 or photometric != "RGB" or allocated != 8 or stored != 8:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "color images must be RGB, "
                                 "3 samples, 8 bits")
    else:
        if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "grayscale images must be "
                                 "MONOCHROME1/2 with 1 sample per pixel")
        if (allocated, stored) not in ((8, 8), (16, 12), (16, 16)) or stored == 16:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "grayscale images must have "
                                 "8 bits, or 12 bits stored in 16")
    if high_bit != stored - 1:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"High Bit must be {stored - 1}")
    if rows < 1 or columns < 1:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "Rows and Columns must be above 0")
    data = need("PixelData")
    expected = rows * columns * samples * allocated // 8
    if len(data) < expected:
        raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"Pixel Data has {len(data)} bytes, "
                             f"{expected} expected")
    dtype = np.uint8 if allocated == 8 else np.dtype("<u2")
    flat = np.frombuffer(data, dtype=dtype, count=rows * columns * samples)
    if color:
        if int(item.get("PlanarConfiguration", 0)) == 1:
            pixels = flat.reshape(3, rows, columns).transpose(1, 2, 0)
        else:
            pixels = flat.reshape(rows, columns, 3)
    else:
        pixels = flat.reshape(rows, columns)
        if stored == 12:
            pixels = pixels & 0x0FFF
    return np.ascontiguousarray(pixels), stored, photometric


def aspect_ratio(item: Dataset) -> float:
    ratio = item.get("PixelAspectRatio")
    if not ratio:
        return 1.0
    try:
        vertical, horizontal = (int(v) for v in ratio)
        return vertical / horizontal if vertical > 0 and horizontal > 0 else 1.0
    except (TypeError, ValueError):
        return 1.0
