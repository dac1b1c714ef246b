"""A worklist item as the store keeps it: one scheduled procedure step (a DICOM JSON model data
set with exactly one Scheduled Procedure Step Sequence item), checked and normalised, plus the
values of its indexed matching keys.

Values are kept in the DICOM JSON model (PS3.18 F.2), which is charset-free Unicode, so a query
in any Specific Character Set can be matched and answered from the same item.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.uid import generate_uid

from appliance.core.errors import ApplianceError
from appliance.dicom.matching import json_values
from appliance.dicom.values import (
    Change,
    ValueProblem,
    check_dataset,
)
from appliance.worklist.keys import INDEXED_SPS, INDEXED_TOP, SPS_ITEM

SPS_TAG = "00400100"


class ItemError(ApplianceError, ValueError):
    """A worklist item was refused; the message says which attribute and why."""


def tag_of(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}"


def json_text(element: dict | None) -> str:
    return "\\".join(json_values(element))


def _element(vr: str, value: str) -> dict:
    if value == "":
        return {"vr": vr}
    if vr == "PN":
        groups = value.split("=")
        if len(groups) > 3:  # left whole for the check to refuse
            groups = [value]
        return {"vr": vr, "Value": [dict(zip(("Alphabetic", "Ideographic", "Phonetic"),
                                             groups, strict=False))]}
    return {"vr": vr, "Value": value.split("\\")}


def element(keyword: str, value: str) -> tuple[str, dict]:
    """(tag, DICOM JSON element) for a keyword and a text value ('\\' separates values)."""
    return tag_of(keyword), _element(dictionary_VR(keyword), value)


@dataclass
class WorklistItem:
    """One scheduled procedure step: the full data set (DICOM JSON) and its key."""

    data: dict[str, Any]
    key: str
    #: Keywords whose values this appliance made up (kept when the item is stored again).
    generated: frozenset[str] = frozenset()
    #: Loose values stored in their DICOM form, as sentences for the person who gave them.
    notes: list[str] = field(default_factory=list)

    @property
    def sps(self) -> dict[str, Any]:
        return self.data[SPS_TAG]["Value"][0]

    def value(self, keyword: str) -> str:
        source = self.sps if keyword in SPS_ITEM else self.data
        return json_text(source.get(tag_of(keyword)))

    def columns(self) -> dict[str, str | int]:
        """Values of the indexed columns, and `multi_valued`: 1 when one of them holds several
        values (joined by backslashes; e.g. two Scheduled Station AE Titles), which an SQL
        equality cannot match by one of them."""
        out = {column: json_text(self.data.get(tag_of(kw))) for kw, column in INDEXED_TOP.items()}
        out.update({column: json_text(self.sps.get(tag_of(kw)))
                    for kw, column in INDEXED_SPS.items()})
        out["sps_time"] = json_text(self.sps.get(tag_of("ScheduledProcedureStepStartTime")))
        out["patient_name_upper"] = out["patient_name"].upper()
        out["referring_physician_upper"] = out["referring_physician"].upper()
        out["performing_physician_upper"] = out["performing_physician"].upper()
        out["multi_valued"] = int(any("\\" in value for value in out.values()))
        return out

    def to_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))

    def summary(self) -> str:
        return (f"{self.value('PatientID') or '-'} {self.value('PatientName') or '-'} "
                f"acc={self.value('AccessionNumber') or '-'} "
                f"{json_text(self.sps.get('00080060')) or '-'} "
                f"{json_text(self.sps.get('00400002'))} {json_text(self.sps.get('00400003'))} "
                f"station={json_text(self.sps.get('00400001')) or '-'}")


#: Type 1 return keys (PS3.4 Table K.6-1) an item is refused without (after `fill_generated`).
#: The Requested Procedure Description is Type 1C there (it or the Requested Procedure Code
#: Sequence); this SCP keeps no code sequences, so an item needs a description (the Scheduled
#: Procedure Step Description stands in for it). Scheduled Station AE Title and Start Time are
#: Type 1 there too but are not required: items without them are common (any station, any
#: time of the day) and are answered with them empty.
TYPE1_TOP = ("PatientID", "PatientName", "StudyInstanceUID", "RequestedProcedureID")
TYPE1_SPS = ("ScheduledProcedureStepStartDate", "Modality", "ScheduledProcedureStepID")


def fill_generated(data: dict[str, Any]) -> frozenset[str]:
    """Fill the generatable Type 1 keys an item lacks (in place); the keywords filled.

    Study Instance UID: a new 2.25 UUID-derived UID (the store keeps it stable). Scheduled
    Procedure Step ID: the accession number, else a digest of what identifies the step (so
    the same row imported twice is the same item). Requested Procedure ID: the accession
    number, else the step ID. A missing Requested Procedure Description is the Scheduled
    Procedure Step Description and the other way round."""
    sps = data[SPS_TAG]["Value"][0]
    filled = set()

    def fill(target: dict, keyword: str, value: str) -> None:
        if value and not json_text(target.get(tag_of(keyword))):
            target[tag_of(keyword)] = {"vr": dictionary_VR(keyword), "Value": [value]}
            filled.add(keyword)

    def text(target: dict, keyword: str) -> str:
        return json_text(target.get(tag_of(keyword)))

    accession = text(data, "AccessionNumber")
    fill(sps, "ScheduledProcedureStepID", accession or _step_digest(data, sps))
    fill(data, "RequestedProcedureID", accession or text(sps, "ScheduledProcedureStepID"))
    fill(data, "StudyInstanceUID", generate_uid(prefix=None))
    fill(data, "RequestedProcedureDescription", text(sps, "ScheduledProcedureStepDescription"))
    fill(sps, "ScheduledProcedureStepDescription", text(data, "RequestedProcedureDescription"))
    return frozenset(filled)


def _step_digest(data: dict[str, Any], sps: dict[str, Any]) -> str:
    parts = [json_text(data.get(tag_of(k))) for k in ("PatientID", "IssuerOfPatientID",
                                                       "RequestedProcedureDescription")]
    parts += [json_text(sps.get(tag_of(k))) for k in SPS_ITEM]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16].upper()


def missing_type1(data: dict[str, Any]) -> str:
    """What an item lacks to answer every Type 1 key ('' when nothing)."""
    sps = data[SPS_TAG]["Value"][0]
    for keyword in TYPE1_TOP:
        if not json_text(data.get(tag_of(keyword))):
            return f"{keyword} ({_tag_text(keyword)}) is required"
    for keyword in TYPE1_SPS:
        if not json_text(sps.get(tag_of(keyword))):
            return f"{keyword} in the ScheduledProcedureStepSequence item is required"
    if not json_text(data.get(tag_of("RequestedProcedureDescription"))):
        return ("RequestedProcedureDescription (0032,1060) or ScheduledProcedureStep"
                "Description (0040,0007) is required")
    return ""


def _tag_text(keyword: str) -> str:
    tag = tag_of(keyword)
    return f"{tag[:4]},{tag[4:]}"


def items_from_dataset(data: dict[str, Any] | Dataset, where: str = "item") -> list[WorklistItem]:
    """Check one data set (DICOM JSON dict or pydicom Dataset) and split it into one worklist
    item per Scheduled Procedure Step Sequence item. Raises ItemError saying what is wrong."""
    if isinstance(data, Dataset):
        data = data.to_json_dict()
    if not isinstance(data, dict):
        raise ItemError(f"{where}: must be a DICOM JSON data set (an object of tags)")
    changes: list[Change] = []
    try:
        check_dataset(data, changes)
    except ValueProblem as exc:
        raise ItemError(f"{where}: {exc}") from None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Dataset.from_json(data)  # refuses malformed tags and VRs
    except Exception as exc:
        raise ItemError(f"{where}: not a valid DICOM JSON data set: {exc}") from None
    # Never let a pydicom warning be the only sign of a bad value. (A ResourceWarning is the
    # garbage collector's news of some other object, whatever thread: not about this item.)
    about_the_item = [w for w in caught if not issubclass(w.category, ResourceWarning)]
    if about_the_item:
        raise ItemError(f"{where}: {about_the_item[0].message}")
    notes = [f"{where}: {change}" for change in changes]
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
        items.append(_checked(full, f"{where}" if len(sequence) == 1 else f"{where} step {index}",
                              notes if index == 0 else []))
    return items


def _checked(data: dict[str, Any], where: str, notes: list[str]) -> WorklistItem:
    sps = data[SPS_TAG]["Value"][0]
    generated = fill_generated(data)
    missing = missing_type1(data)
    if missing:
        raise ItemError(f"{where}: {missing} (a Type 1 key of a worklist answer)")
    accession = json_text(data.get(tag_of("AccessionNumber")))
    sps_id = json_text(sps.get(tag_of("ScheduledProcedureStepID")))
    if not json_text(sps.get(tag_of("ScheduledProcedureStepStatus"))):
        sps[tag_of("ScheduledProcedureStepStatus")] = {"vr": "CS", "Value": ["SCHEDULED"]}
    key = f"{accession}/{sps_id}" if accession else f"/{sps_id}"
    return WorklistItem(data, key, generated, notes)
