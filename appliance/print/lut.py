"""From image pixel values to the printer's driving values, the grayscale way of PS3.14.

Pixel values go through the Presentation LUT (IDENTITY, LIN OD, or explicit LUT data) to
P-values; P-values are spaced equally in just-noticeable differences of the Grayscale Standard
Display Function between the luminances the film can show (from Min/Max Density, Illumination
and Reflected Ambient Light), which gives an optical density per value; the printer profile's
density range then maps density linearly to 8-bit driving values (255 = least density).
LIN OD skips the GSDF: input values are spaced linearly in density, the least value printing
at Max Density. Polarity REVERSE swaps the ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from appliance.core.errors import ApplianceError

log = logging.getLogger(__name__)

# PS3.14 B.1: log10 L(j) = rational polynomial in ln j, j = 1..1023
_A, _B, _C, _D, _E = -1.3011877, -2.5840191e-2, 8.0242636e-2, -1.0320229e-1, 1.3646699e-1
_F, _G, _H, _K, _M = 2.8745620e-2, -2.5468404e-2, -3.1978977e-3, 1.2992634e-4, 1.3635334e-3
# PS3.14 B.2: j(L) = polynomial in log10 L
_INV = (71.498068, 94.593053, 41.912053, 9.8247004, 0.28175407, -1.1878455, -0.18014349,
        0.14710899, -0.017046845)
JND_MIN, JND_MAX = 1.0, 1023.0


class LutError(ApplianceError, ValueError):
    """A Presentation LUT that cannot be applied."""


def gsdf_luminance(jnd: np.ndarray | float) -> np.ndarray:
    """Luminance (cd/m²) of JND index `jnd` on the Grayscale Standard Display Function."""
    x = np.log(np.clip(np.asarray(jnd, dtype=np.float64), JND_MIN, JND_MAX))
    num = _A + _C * x + _E * x**2 + _G * x**3 + _M * x**4
    den = 1 + _B * x + _D * x**2 + _F * x**3 + _H * x**4 + _K * x**5
    return 10 ** (num / den)


def gsdf_jnd(luminance: np.ndarray | float) -> np.ndarray:
    """JND index of a luminance (inverse of `gsdf_luminance`)."""
    x = np.log10(np.asarray(luminance, dtype=np.float64))
    return sum(c * x**i for i, c in enumerate(_INV))


@dataclass(frozen=True)
class PresentationLut:
    """Either a shape ("IDENTITY", "LIN OD") or explicit data with its descriptor."""

    shape: str = "IDENTITY"
    first_mapped: int = 0
    output_bits: int = 0
    data: tuple[int, ...] = ()

    @classmethod
    def explicit(cls, descriptor, data) -> PresentationLut:
        entries, first, bits = (int(v) for v in descriptor)
        entries = entries or 65536
        values = tuple(int(v) for v in data)
        if len(values) != entries:
            raise LutError(f"LUT Data has {len(values)} entries, the LUT Descriptor says "
                           f"{entries}")
        if not 10 <= bits <= 16:
            raise LutError(f"LUT Descriptor output bits must be 10 to 16, got {bits}")
        if max(values) >= 1 << bits:
            raise LutError(f"LUT Data has values above {bits} bits")
        return cls("", first, bits, values)


def p_values(levels: int, lut: PresentationLut) -> np.ndarray:
    """P-value in [0, 1] for each input value 0..levels-1 (not for LIN OD)."""
    values = np.arange(levels, dtype=np.float64)
    if lut.shape == "IDENTITY":
        return values / (levels - 1)
    table = np.asarray(lut.data, dtype=np.float64)
    index = np.clip(values - lut.first_mapped, 0, len(table) - 1).astype(np.int64)
    return table[index] / ((1 << lut.output_bits) - 1)


def densities(levels: int, lut: PresentationLut, reverse: bool, min_density: float,
              max_density: float, illumination: float, ambient: float) -> np.ndarray:
    """Optical density printed for each input value 0..levels-1."""
    if lut.shape == "LIN OD":
        fraction = np.arange(levels, dtype=np.float64) / (levels - 1)
        if reverse:
            fraction = 1 - fraction
        return max_density - fraction * (max_density - min_density)
    p = p_values(levels, lut)
    if reverse:
        p = 1 - p
    l_max = ambient + illumination * 10 ** (-min_density)
    l_min = ambient + illumination * 10 ** (-max_density)
    j_min, j_max = gsdf_jnd(l_min), gsdf_jnd(l_max)
    lum = gsdf_luminance(j_min + p * (j_max - j_min))
    transmitted = np.clip(lum - ambient, 1e-12, None) / illumination
    return np.clip(-np.log10(transmitted), min_density, max_density)


def driving_values(density: np.ndarray | float, printer_min: float,
                   printer_max: float) -> np.ndarray:
    """8-bit driving values for densities: printer_min -> 255, printer_max -> 0."""
    dv = 255.0 * (printer_max - np.asarray(density, dtype=np.float64)) / \
        (printer_max - printer_min)
    return np.clip(np.rint(dv), 0, 255).astype(np.uint8)
