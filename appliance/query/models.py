"""The Query/Retrieve information models we offer (PS3.4 C.6.1 Patient Root, C.6.2 Study Root):
their SOP classes, query levels, each level's unique key and the attributes we match and return
at it (PS3.4 C.6.1.1 / C.6.2.1 tables), and the computed attributes (C.3.4 "Additional Query
Keys"), which are return keys only except Modalities in Study.

Imports nothing from the rest of the appliance.
"""

from __future__ import annotations

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

PATIENT_ROOT = (PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, PATIENT_ROOT_GET)
STUDY_ROOT = (STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET)
SOP_CLASSES = PATIENT_ROOT + STUDY_ROOT

#: The levels of each model, top first.
LEVELS = {"patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"),
          "study": ("STUDY", "SERIES", "IMAGE")}

#: Each level's unique key (keyword) and the `instances` column that holds it.
UNIQUE_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID",
              "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
UNIQUE_COLUMN = {"PATIENT": "patient_id", "STUDY": "study_uid", "SERIES": "series_uid",
                 "IMAGE": "sop_instance_uid"}

#: Attributes read from the stored files' headers per level (keyword -> VR): the standard's
#: required and unique keys and the usual optional ones.
PATIENT_KEYS = {"PatientName": "PN", "PatientID": "LO", "IssuerOfPatientID": "LO",
                "PatientBirthDate": "DA", "PatientBirthTime": "TM", "PatientSex": "CS",
                "OtherPatientIDs": "LO", "EthnicGroup": "SH", "PatientComments": "LT"}
STUDY_KEYS = {"StudyDate": "DA", "StudyTime": "TM", "AccessionNumber": "SH", "StudyID": "SH",
              "StudyInstanceUID": "UI", "ReferringPhysicianName": "PN",
              "StudyDescription": "LO", "PatientAge": "AS", "PatientSize": "DS",
              "PatientWeight": "DS", "InstitutionName": "LO"}
SERIES_KEYS = {"Modality": "CS", "SeriesNumber": "IS", "SeriesInstanceUID": "UI",
               "SeriesDescription": "LO", "SeriesDate": "DA", "SeriesTime": "TM",
               "BodyPartExamined": "CS", "ProtocolName": "LO"}
IMAGE_KEYS = {"InstanceNumber": "IS", "SOPInstanceUID": "UI", "SOPClassUID": "UI",
              "ContentDate": "DA", "ContentTime": "TM", "AcquisitionNumber": "IS",
              "ImageType": "CS", "Rows": "US", "Columns": "US", "NumberOfFrames": "IS"}
LEVEL_KEYS = {"PATIENT": PATIENT_KEYS, "STUDY": STUDY_KEYS, "SERIES": SERIES_KEYS,
              "IMAGE": IMAGE_KEYS}

#: Computed attributes per level (keyword -> VR), counted over the instances held.
COMPUTED = {
    "PATIENT": {"NumberOfPatientRelatedStudies": "IS", "NumberOfPatientRelatedSeries": "IS",
                "NumberOfPatientRelatedInstances": "IS"},
    "STUDY": {"ModalitiesInStudy": "CS", "SOPClassesInStudy": "UI",
              "NumberOfStudyRelatedSeries": "IS", "NumberOfStudyRelatedInstances": "IS"},
    "SERIES": {"NumberOfSeriesRelatedInstances": "IS"},
    "IMAGE": {},
}
#: Computed attributes that are matching keys too (any one of the study's values matches).
COMPUTED_MATCHING = frozenset({"ModalitiesInStudy", "SOPClassesInStudy"})


def model_of(sop_class: str) -> str:
    """'patient' or 'study' for one of our SOP classes (KeyError otherwise)."""
    if sop_class in PATIENT_ROOT:
        return "patient"
    if sop_class in STUDY_ROOT:
        return "study"
    raise KeyError(sop_class)


def keys_up_to(model: str, level: str) -> dict[str, str]:
    """Every attribute an answer at `level` may carry (its level's and those above it, which in
    the Study Root model include the patient's at STUDY level), keyword -> VR."""
    out: dict[str, str] = {}
    levels = LEVELS[model]
    for name in levels[:levels.index(level) + 1]:
        if model == "study" and name == "STUDY":
            out.update(PATIENT_KEYS)
        out.update(LEVEL_KEYS[name])
    out.update(COMPUTED[level])
    if model == "study" and level == "STUDY":
        out.update(COMPUTED["PATIENT"])  # Study Root's study level carries the patient's
    return out
