"""What the MPPS SCP checks of an N-CREATE and an N-SET (PS3.4 F.7.2, Table F.7.2-1), and the
DIMSE status that names the offending attribute when a request is refused.

- N-CREATE: the Type 1 attributes present (0x0120 Missing Attribute) and not empty (0x0121
  Missing Attribute Value); Performed Procedure Step Status IN PROGRESS (0x0106 Invalid
  Attribute Value); each Scheduled Step Attributes Sequence item with its Study Instance UID.
- N-SET: none of the attributes the table marks "not allowed" for N-SET (0x0105 No Such
  Attribute); a status, when given, one of IN PROGRESS, COMPLETED, DISCONTINUED (0x0106).
- Going to COMPLETED or DISCONTINUED (checked on the data set as it would be after the N-SET):
  the final state requirements (End Date and End Time; for COMPLETED a Performed Series
  Sequence with at least one item, each with its Series Instance UID), 0x0120/0x0121.

Type 2 attributes the SCU leaves out are accepted (many modalities omit some; nothing here
needs them). Each refusal carries the attribute's keyword and tag in its Error Comment and its
tag in Attribute Identifier List (0000,1005).
"""

from __future__ import annotations

import logging

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword

from appliance.core.errors import ApplianceError

log = logging.getLogger(__name__)

NO_SUCH_ATTRIBUTE = 0x0105
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_INSTANCE = 0x0111
NO_SUCH_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
#: PS3.4 F.7.2.2.2: the Error ID of "Performed Procedure Step Object may no longer be updated"
#: (sent with 0x0110 Processing Failure)
NO_LONGER_UPDATABLE = 0xA710

IN_PROGRESS, COMPLETED, DISCONTINUED = "IN PROGRESS", "COMPLETED", "DISCONTINUED"
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)
FINAL = (COMPLETED, DISCONTINUED)

#: Table F.7.2-1: Type 1 at N-CREATE (present and not empty)
CREATE_TYPE_1 = ("ScheduledStepAttributesSequence", "PerformedProcedureStepID",
                 "PerformedStationAETitle", "PerformedProcedureStepStartDate",
                 "PerformedProcedureStepStartTime", "PerformedProcedureStepStatus", "Modality")
#: ... in each Scheduled Step Attributes Sequence item
SCHEDULED_STEP_TYPE_1 = ("StudyInstanceUID",)
#: Table F.7.2-1: "Not allowed" in an N-SET (set once, at N-CREATE)
NOT_SETTABLE = ("ScheduledStepAttributesSequence", "PatientName", "PatientID",
                "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                "ReferencedPatientSequence", "PerformedProcedureStepID",
                "PerformedStationAETitle", "PerformedStationName", "PerformedLocation",
                "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
                "Modality", "StudyID", "SOPInstanceUID", "SOPClassUID")
#: the final state requirements (COMPLETED or DISCONTINUED)
FINAL_TYPE_1 = ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime")


class MppsRefusal(ApplianceError, ValueError):
    """A request the MPPS SCP refuses: `code` the DIMSE status, the message its Error Comment,
    `tags` the attributes it is about, `error_id` an Error ID (0000,0903) or None."""

    def __init__(self, code: int, comment: str, keywords: tuple[str, ...] = (),
                 error_id: int | None = None):
        super().__init__(comment)
        self.code = code
        self.comment = comment
        self.tags = [tag_for_keyword(k) for k in keywords if tag_for_keyword(k) is not None]
        self.error_id = error_id

    def response(self) -> Dataset:
        """The status data set (Status, Error Comment, Attribute Identifier List, Error ID)."""
        status = Dataset()
        status.Status = self.code
        status.ErrorComment = self.comment[:64]
        if self.tags and self.code in (NO_SUCH_ATTRIBUTE, MISSING_ATTRIBUTE,
                                       MISSING_ATTRIBUTE_VALUE, INVALID_ATTRIBUTE_VALUE):
            status.AttributeIdentifierList = self.tags
        if self.error_id is not None:
            status.ErrorID = self.error_id
        return status


def named(keyword: str) -> str:
    """'(0008,0060) Modality': how a refusal names an attribute (an Error Comment holds 64
    characters: the tag first)."""
    tag = tag_for_keyword(keyword)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword}"


def _require(ds: Dataset, keyword: str, where: str = "") -> None:
    if keyword not in ds:
        raise MppsRefusal(MISSING_ATTRIBUTE, f"missing {named(keyword)}{where}", (keyword,))
    value = ds[keyword].value
    if value is None or value == "" or (hasattr(value, "__len__") and len(value) == 0):
        raise MppsRefusal(MISSING_ATTRIBUTE_VALUE, f"empty {named(keyword)}{where}", (keyword,))


def status_of(ds: Dataset) -> str:
    return str(ds.get("PerformedProcedureStepStatus", "") or "").strip().upper()


def check_create(ds: Dataset) -> None:
    """Refuse an N-CREATE Attribute List the standard does not allow (MppsRefusal)."""
    for keyword in CREATE_TYPE_1:
        _require(ds, keyword)
    for index, item in enumerate(ds.ScheduledStepAttributesSequence):
        for keyword in SCHEDULED_STEP_TYPE_1:
            _require(item, keyword, f" in Scheduled Step item {index + 1}")
    status = status_of(ds)
    if status != IN_PROGRESS:
        raise MppsRefusal(INVALID_ATTRIBUTE_VALUE, f"(0040,0252) must be IN PROGRESS at "
                          f"N-CREATE, not {status!r}",
                          ("PerformedProcedureStepStatus",))


def check_set(modification: Dataset, current_status: str) -> None:
    """Refuse an N-SET Modification List the standard does not allow on an instance in
    `current_status` (MppsRefusal)."""
    if current_status in FINAL:
        raise MppsRefusal(PROCESSING_FAILURE, f"may no longer be updated: it is "
                          f"{current_status}", error_id=NO_LONGER_UPDATABLE)
    for keyword in NOT_SETTABLE:
        if keyword in modification:
            raise MppsRefusal(NO_SUCH_ATTRIBUTE, f"N-SET may not set {named(keyword)}",
                              (keyword,))
    if "PerformedProcedureStepStatus" in modification:
        status = status_of(modification)
        if status not in STATUSES:
            raise MppsRefusal(INVALID_ATTRIBUTE_VALUE, f"(0040,0252) {status!r} is not one "
                              f"of {', '.join(STATUSES)}",
                              ("PerformedProcedureStepStatus",))


def check_final(ds: Dataset) -> None:
    """The final state requirements of the data set as it would be after an N-SET that makes
    it COMPLETED or DISCONTINUED (MppsRefusal)."""
    status = status_of(ds)
    where = f" for {status}"
    for keyword in FINAL_TYPE_1:
        _require(ds, keyword, where)
    if status == COMPLETED:
        _require(ds, "PerformedSeriesSequence", where)
        for index, item in enumerate(ds.PerformedSeriesSequence):
            _require(item, "SeriesInstanceUID", f" in Performed Series item {index + 1}")
