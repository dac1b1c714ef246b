"""A worklist item as the store keeps it: one scheduled procedure step (a DICOM JSON model data
set with exactly one Scheduled Procedure Step Sequence item), checked and normalised, plus the
values of its indexed matching keys.

Values are kept in the DICOM JSON model (PS3.18 F.2), which is charset-free Unicode, so a query
in any Specific Character Set can be matched and answered from the same item.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from appliance.errors import ApplianceError
from appliance.worklist.keys import INDEXED_SPS, INDEXED_TOP, SPS_ITEM

SPS_TAG = "00400100"


class ItemError(ApplianceError, ValueError):
    """A worklist item was refused; the message says which attribute and why."""


def tag_of(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}"


def json_values(element: dict | None) -> list[str]:
    """The values of one DICOM JSON element as strings (PN: the alphabetic group)."""
    if not element:
        return []
    out = []
    for value in element.get("Value", []):
        if isinstance(value, dict):
            value = value.get("Alphabetic", "")
        if value is None:
            continue
        out.append(str(value))
    return [v for v in out if v.strip() != ""]


def json_text(element: dict | None) -> str:
    return "\\".join(json_values(element))


def _element(vr: str, value: str) -> dict:
    if value == "":
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": value}]}
    return {"vr": vr, "Value": value.split("\\")}


def element(keyword: str, value: str) -> tuple[str, dict]:
    """(tag, DICOM JSON element) for a keyword and a text value ('\\' separates values)."""
    return tag_of(keyword), _element(dictionary_VR(keyword), value)


_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")


def normalise_date(value: str) -> str:
    value = value.strip().replace(".", "").replace("-", "") if len(value.strip()) == 10 \
        else value.strip()
    if not _DATE.fullmatch(value):
        raise ValueError(f"{value!r} is not a DICOM date (YYYYMMDD)")
    return value


def normalise_time(value: str) -> str:
    value = value.strip().replace(":", "")
    if not _TIME.fullmatch(value):
        raise ValueError(f"{value!r} is not a DICOM time (HHMMSS.FFFFFF)")
    return value


def pad_time(value: str, upper: bool = False) -> str:
    """'1030' -> '103000.000000' (or '103059.999999' as an upper bound)."""
    whole, _, fraction = value.partition(".")
    whole += ("5959" if upper else "0000")[len(whole) - 2:]
    fraction = (fraction + ("9" if upper else "0") * 6)[:6]
    return f"{whole}.{fraction}"


@dataclass
class WorklistItem:
    """One scheduled procedure step: the full data set (DICOM JSON) and its key."""

    data: dict[str, Any]
    key: str

    @property
    def sps(self) -> dict[str, Any]:
        return self.data[SPS_TAG]["Value"][0]

    def value(self, keyword: str) -> str:
        source = self.sps if keyword in SPS_ITEM else self.data
        return json_text(source.get(tag_of(keyword)))

    def columns(self) -> dict[str, str]:
        """Values of the indexed columns."""
        out = {column: json_text(self.data.get(tag_of(kw))) for kw, column in INDEXED_TOP.items()}
        out.update({column: json_text(self.sps.get(tag_of(kw)))
                    for kw, column in INDEXED_SPS.items()})
        out["sps_time"] = json_text(self.sps.get(tag_of("ScheduledProcedureStepStartTime")))
        out["patient_name_upper"] = out["patient_name"].upper()
        out["referring_physician_upper"] = out["referring_physician"].upper()
        out["performing_physician_upper"] = out["performing_physician"].upper()
        return out

    def to_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))

    def to_dataset(self) -> Dataset:
        ds = Dataset.from_json(self.data)
        ds.SpecificCharacterSet = "ISO_IR 192"
        return ds

    def summary(self) -> str:
        return (f"{self.value('PatientID') or '-'} {self.value('PatientName') or '-'} "
                f"acc={self.value('AccessionNumber') or '-'} "
                f"{json_text(self.sps.get('00080060')) or '-'} "
                f"{json_text(self.sps.get('00400002'))} {json_text(self.sps.get('00400003'))} "
                f"station={json_text(self.sps.get('00400001')) or '-'}")


def items_from_dataset(data: dict[str, Any] | Dataset, where: str = "item") -> list[WorklistItem]:
    """Check one data set (DICOM JSON dict or pydicom Dataset) and split it into one worklist
    item per Scheduled Procedure Step Sequence item. Raises ItemError saying what is wrong."""
    if isinstance(data, Dataset):
        data = data.to_json_dict()
    if not isinstance(data, dict):
        raise ItemError(f"{where}: must be a DICOM JSON data set (an object of tags)")
    try:
        Dataset.from_json(data)  # refuses malformed tags, VRs and values
    except Exception as exc:
        raise ItemError(f"{where}: not a valid DICOM JSON data set: {exc}") from None
    data = {k.upper(): v for k, v in data.items() if k.upper() not in ("00080005",)}
    sequence = data.get(SPS_TAG, {}).get("Value") or []
    if not sequence:
        raise ItemError(f"{where}: ScheduledProcedureStepSequence (0040,0100) with at least one "
                        "item is required")
    items = []
    for index, sps in enumerate(sequence):
        if not isinstance(sps, dict):
            raise ItemError(f"{where}: ScheduledProcedureStepSequence item {index} is not a "
                            "data set")
        sps = {k.upper(): v for k, v in sps.items()}
        full = dict(data)
        full[SPS_TAG] = {"vr": "SQ", "Value": [sps]}
        items.append(_checked(full, f"{where}" if len(sequence) == 1 else f"{where} step {index}"))
    return items


def _checked(data: dict[str, Any], where: str) -> WorklistItem:
    sps = data[SPS_TAG]["Value"][0]
    if not json_text(data.get(tag_of("PatientID"))):
        raise ItemError(f"{where}: PatientID (0010,0020) is required")
    for keyword in ("ScheduledProcedureStepStartDate", "Modality"):
        if not json_text(sps.get(tag_of(keyword))):
            raise ItemError(f"{where}: {keyword} in the ScheduledProcedureStepSequence item is "
                            "required")
    _normalise(data, where)
    _normalise(sps, where)
    accession = json_text(data.get(tag_of("AccessionNumber")))
    sps_id = json_text(sps.get(tag_of("ScheduledProcedureStepID")))
    if not sps_id:
        sps_id = accession or uuid.uuid4().hex[:16]
        sps[tag_of("ScheduledProcedureStepID")] = {"vr": "SH", "Value": [sps_id]}
    if not json_text(sps.get(tag_of("ScheduledProcedureStepStatus"))):
        sps[tag_of("ScheduledProcedureStepStatus")] = {"vr": "CS", "Value": ["SCHEDULED"]}
    key = f"{accession}/{sps_id}" if accession else f"/{sps_id}"
    return WorklistItem(data, key)


def _normalise(data: dict[str, Any], where: str) -> None:
    for tag, elem in data.items():
        if not isinstance(elem, dict):
            continue
        vr = elem.get("vr")
        if vr not in ("DA", "TM") or not elem.get("Value"):
            continue
        try:
            check = normalise_date if vr == "DA" else normalise_time
            elem["Value"] = [check(str(v)) for v in elem["Value"] if v not in (None, "")]
        except ValueError as exc:
            name = keyword_for_tag(int(tag, 16)) or tag
            raise ItemError(f"{where}: {name}: {exc}") from None
        if not elem["Value"]:
            del elem["Value"]
