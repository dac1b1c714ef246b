"""Coercion of the copy a route sends: `set`, `remove`, `prefix` and `deidentify` of a
`[[routes]]` entry (issue 19), applied to a data set read from the stored file, never to the
file itself.

`coerce_file` is the one entry point for every sender (the C-STORE SCU here, a STOW-RS sender
alike): stored file + rules -> the data set to send, in the stored transfer syntax. Pixel Data
is not decoded: pydicom keeps its bytes (native or encapsulated fragments) as read and writes
them back unchanged. An instance whose route has no rules never comes here: it is streamed
from its file as before.

Order: de-identification first, then remove, set and prefix, so a route can de-identify and
still label the copy (e.g. `set = { PatientName = "STUDY^042" }`). A prefix applies to a
present, non-empty value (each value of a multi-valued one); a result the VR does not allow
(too long) refuses the instance with the reason (CoercionError), nothing is cut.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread, dcmwrite
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from appliance.core.errors import ApplianceError
from appliance.forward.coercion_config import split_values, value_problem, vr_of
from appliance.forward.deidentify import deidentify

log = logging.getLogger(__name__)


class CoercionError(ApplianceError, ValueError):
    """The rules cannot be applied to this instance (the message says why)."""


@dataclass(frozen=True)
class CoercionRules:
    """What one route changes in the copy it sends."""

    set: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    prefix: dict[str, str] = field(default_factory=dict)
    deidentify: bool = False

    @classmethod
    def of(cls, route) -> CoercionRules:
        """The rules of a RouteConfig."""
        return cls(dict(route.set), tuple(route.remove), dict(route.prefix), route.deidentify)

    def __bool__(self) -> bool:
        return bool(self.set or self.remove or self.prefix or self.deidentify)


def coerce_file(path: Path, rules: CoercionRules,
                uid_for: Callable[[str], str] | None = None) -> Dataset:
    """Read the stored file at `path` and return the data set to send with `rules` applied
    (its file meta kept, the Media Storage SOP Instance UID following a replaced SOP Instance
    UID). `uid_for` maps an original UID to its replacement (needed for `deidentify`)."""
    ds = dcmread(path)
    if rules.deidentify:
        if uid_for is None:
            raise CoercionError("deidentify needs the box's UID map")
        deidentify(ds, uid_for)
    for keyword in rules.remove:
        if keyword in ds:
            delattr(ds, keyword)
    for keyword, text in rules.set.items():
        vr = vr_of(keyword)
        values = split_values(vr, text)
        ds.add_new(tag_for_keyword(keyword), vr, values[0] if len(values) == 1 else values)
    for keyword, prefix in rules.prefix.items():
        _prefix(ds, keyword, prefix)
    return ds


def _prefix(ds: Dataset, keyword: str, prefix: str) -> None:
    if keyword not in ds or ds[keyword].is_empty:
        return
    elem = ds[keyword]
    text = "\\".join(str(v) for v in elem.value) if elem.VM > 1 else str(elem.value)
    result = "\\".join(prefix + value for value in split_values(elem.VR, text))
    problem = value_problem(elem.VR, result)
    if problem:
        raise CoercionError(f"prefix {keyword}: {result!r} is not a valid {elem.VR} value: "
                            f"{problem}")
    values = split_values(elem.VR, result)
    elem.value = values[0] if len(values) == 1 else values


def encode(ds: Dataset) -> bytes:
    """A coerced data set as a DICOM file (Part 10, its own transfer syntax): for senders that
    send files (STOW-RS)."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
