"""Coercion rules of [[routes]] (set, remove, prefix, deidentify) are checked when the
configuration is read: an unknown keyword, a value its VR does not allow, removing a UID the
receiver needs, or a prefix on a non-text VR is refused with the key and the reason."""

from __future__ import annotations

import pytest

from appliance.config.loader import parse_text
from appliance.core.errors import ConfigError

BASE = """
[[peers]]
name = "pacs"
ae_title = "PACS"
host = "127.0.0.1"

[[destinations]]
peer = "pacs"

[[routes]]
destinations = ["pacs"]
"""


def refusal(extra: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_text(BASE + extra, "appliance.toml")
    [line] = info.value.problems
    return line


def test_valid_rules_are_accepted():
    config = parse_text(BASE + 'set = { InstitutionName = "General Hospital", StudyDate = '
                        '"20240101", OtherPatientIDs = "A\\\\B" }\nremove = ["StationName"]\n'
                        'prefix = { PatientID = "X-" }\ndeidentify = true\n', "appliance.toml")
    route = config.routes[0]
    assert route.set == {"InstitutionName": "General Hospital", "StudyDate": "20240101",
                         "OtherPatientIDs": "A\\B"}
    assert route.remove == ["StationName"] and route.prefix == {"PatientID": "X-"}
    assert route.deidentify is True
    plain = parse_text(BASE, "appliance.toml").routes[0]
    assert (plain.set, plain.remove, plain.prefix, plain.deidentify) == ({}, [], {}, False)


@pytest.mark.parametrize(("extra", "expected"), [
    ('set = { PatinetID = "1" }',
     "appliance.toml: routes[0].set: 'PatinetID' is not a DICOM keyword (did you mean "
     "'PatientID'?)"),
    ('remove = ["NoSuchKeyword"]',
     "appliance.toml: routes[0].remove: 'NoSuchKeyword' is not a DICOM keyword"),
    ('set = { StudyDate = "2024-01-01" }',
     "appliance.toml: routes[0].set: StudyDate: '2024-01-01' is not a valid DA value"),
    ('set = { Modality = "ct" }',
     "appliance.toml: routes[0].set: Modality: 'ct' is not a valid CS value"),
    (f'set = {{ PatientID = "{"1" * 65}" }}',
     "maximum length of 64 allowed for VR LO"),
    ('set = { Rows = "512" }',
     "appliance.toml: routes[0].set: Rows: has VR US; set takes only text VRs"),
    ('set = { SOPInstanceUID = "1.2.3" }',
     "routes[0].set: SOPInstanceUID: cannot be set to one value for every instance"),
    ('remove = ["StudyInstanceUID"]',
     "routes[0].remove: StudyInstanceUID: cannot be removed, the receiver needs it"),
    ('remove = ["SOPInstanceUID"]', "routes[0].remove: SOPInstanceUID: cannot be removed"),
    ('prefix = { StudyDate = "1" }',
     "appliance.toml: routes[0].prefix: StudyDate: has VR DA; prefix takes only character "
     "string VRs"),
    ('prefix = { PatientID = "" }', "routes[0].prefix: PatientID: the prefix is empty"),
    ('prefix = { PatientID = "X-" }\nremove = ["PatientID"]',
     "appliance.toml: routes[0]: PatientID is in both remove and prefix"),
    ('deidentify = "yes"', "routes[0].deidentify: expected true or false"),
])
def test_bad_rules_are_refused_with_key_and_reason(extra, expected):
    assert expected in refusal(extra)
