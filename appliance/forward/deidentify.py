"""De-identification of the copy a route sends (`deidentify = true`): the Basic Application
Level Confidentiality Profile of PS3.15 Annex E applied to a pydicom data set, in place, with
the action table of `deid_profile.py`.

Each attribute the table names gets its action, in sequence items too; private attributes are
removed; UIDs to be replaced go through `uid_for` (the box's persistent UID map), so the same
original UID always becomes the same new one. Pixel data is not in the table and is never
touched: its bytes (native or encapsulated) go out as stored. The data set then says what was
done: Patient Identity Removed YES, De-identification Method and its Code Sequence (113100,
DCM, "Basic Application Confidentiality Profile"), as PS3.15 E.1.1 asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from appliance.forward import deid_profile

log = logging.getLogger(__name__)

METHOD = "Basic Application Confidentiality Profile (PS3.15 Annex E)"
DUMMY_TEXT = "ANONYMIZED"
#: A non-zero length dummy per VR for the D action (text VRs not named: DUMMY_TEXT).
DUMMIES = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000Y",
           "DS": "0", "IS": "0", "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0,
           "FL": 0.0, "FD": 0.0}
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN", "AT"}
PIXEL_DATA_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


def deidentify(ds: Dataset, uid_for: Callable[[str], str]) -> None:
    """Apply the Basic Profile to `ds` (and its file meta's Media Storage SOP Instance UID)."""
    _clean(ds, uid_for)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def _vr(ds: Dataset, tag) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ds[tag].VR


def _clean(ds: Dataset, uid_for: Callable[[str], str]) -> None:
    for tag in list(ds.keys()):
        if tag.is_private:
            del ds[tag]
            continue
        if int(tag) in PIXEL_DATA_TAGS:
            continue
        action = deid_profile.resolve(int(tag))
        if action == "X":
            del ds[tag]
            continue
        if action is None and "SQ" not in _vr(ds, tag):
            continue
        elem = ds[tag]
        if elem.VR == "SQ":
            if action == "Z":
                elem.value = Sequence()
            else:  # kept, D or U*: the items are de-identified
                for item in elem.value:
                    _clean(item, uid_for)
        elif action == "Z":
            elem.value = None
        elif action in ("U", "U*") or (action == "D" and elem.VR == "UI"):
            elem.value = _new_uids(elem.value, uid_for)
        elif action == "D":
            elem.value = _dummy(elem.VR)


def _new_uids(value, uid_for: Callable[[str], str]):
    if not value:  # an empty UID carries nothing: it stays empty
        return value
    if isinstance(value, str):
        return uid_for(value)
    return [uid_for(str(v)) for v in value]


def _dummy(vr: str):
    if vr in DUMMIES:
        return DUMMIES[vr]
    if vr in BINARY_VRS:
        return None
    return DUMMY_TEXT
