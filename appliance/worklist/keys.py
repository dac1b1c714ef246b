"""The worklist attributes we know: where each lives (item top level or the Scheduled Procedure
Step Sequence item), its VR, and which of them are indexed matching keys.

This module imports nothing from the rest of the appliance so that the configuration schema can
use it to validate `[worklist.hl7] field_map`.
"""

from __future__ import annotations

#: Top-level attributes of a worklist item (PS3.4 K.6.1.2.2), keyword -> VR.
TOP_LEVEL = {
    "SpecificCharacterSet": "CS",
    "AccessionNumber": "SH",
    "ReferringPhysicianName": "PN",
    "StudyInstanceUID": "UI",
    "RequestedProcedureDescription": "LO",
    "RequestedProcedureID": "SH",
    "RequestedProcedurePriority": "SH",
    "PatientName": "PN",
    "PatientID": "LO",
    "IssuerOfPatientID": "LO",
    "PatientBirthDate": "DA",
    "PatientSex": "CS",
    "PatientWeight": "DS",
    "PatientSize": "DS",
    "MedicalAlerts": "LO",
    "Allergies": "LO",
    "PregnancyStatus": "US",
    "AdmissionID": "LO",
    "CurrentPatientLocation": "LO",
    "OtherPatientIDs": "LO",
    "PatientComments": "LT",
    "ImagingServiceRequestComments": "LT",
    "RequestingPhysician": "PN",
    "PlacerOrderNumberImagingServiceRequest": "LO",
    "FillerOrderNumberImagingServiceRequest": "LO",
    "ReasonForTheRequestedProcedure": "LO",
}

#: Attributes of the Scheduled Procedure Step Sequence item, keyword -> VR.
SPS_ITEM = {
    "ScheduledStationAETitle": "AE",
    "ScheduledProcedureStepStartDate": "DA",
    "ScheduledProcedureStepStartTime": "TM",
    "Modality": "CS",
    "ScheduledPerformingPhysicianName": "PN",
    "ScheduledProcedureStepDescription": "LO",
    "ScheduledStationName": "SH",
    "ScheduledProcedureStepLocation": "SH",
    "ScheduledProcedureStepID": "SH",
    "ScheduledProcedureStepStatus": "CS",
    "PreMedication": "LO",
    "RequestedContrastAgent": "LO",
    "CommentsOnTheScheduledProcedureStep": "LT",
}

#: Keywords the HL7 field map may fill.
MAPPABLE_KEYWORDS = frozenset(set(TOP_LEVEL) - {"SpecificCharacterSet"} | set(SPS_ITEM))

#: Matching keys backed by an indexed column: keyword -> column. SPS keys are matched inside
#: the sequence item (sequence matching); the others at the top level.
INDEXED_TOP = {
    "PatientName": "patient_name",
    "PatientID": "patient_id",
    "AccessionNumber": "accession_number",
    "RequestedProcedureID": "requested_procedure_id",
    "StudyInstanceUID": "study_instance_uid",
    "ReferringPhysicianName": "referring_physician",
}
INDEXED_SPS = {
    "ScheduledStationAETitle": "station_aet",
    "Modality": "modality",
    "ScheduledPerformingPhysicianName": "performing_physician",
    "ScheduledProcedureStepID": "sps_id",
    "ScheduledStationName": "station_name",
    "ScheduledProcedureStepStartDate": "sps_date",
}

#: Every key used for matching (the conformance statement lists these); other keys are
#: returned but not matched.
MATCHING_TOP = {**{k: TOP_LEVEL[k] for k in INDEXED_TOP},
                "IssuerOfPatientID": "LO", "PatientBirthDate": "DA", "PatientSex": "CS",
                "AdmissionID": "LO"}
MATCHING_SPS = {**{k: SPS_ITEM[k] for k in INDEXED_SPS},
                "ScheduledProcedureStepStartTime": "TM",
                "ScheduledProcedureStepStatus": "CS",
                "ScheduledProcedureStepLocation": "SH"}
