"""The coercion keys of a `[[routes]]` entry: `set`, `remove`, `prefix` and `deidentify`
(issue 19), checked when the configuration is read, so a rule the sender could not apply is
refused with its key and reason instead of failing every instance later.

Keywords are checked against pydicom's data dictionary, values against the keyword's VR with
the appliance's one value check (appliance.dicom.values), in their DICOM form: a loose form
that check would normalise (2024-01-01, lower-case code strings) is refused. `RouteConfig` in
`config.py` holds the fields.
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import AfterValidator
from pydicom.datadict import dictionary_VR, keyword_dict, tag_for_keyword

from appliance.dicom.values import FREE_TEXT, ValueProblem, checked_value

#: VRs whose value can be written as text in the configuration.
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                      "TM", "UC", "UI", "UR", "UT"})
#: VRs a prefix makes sense for: character strings that are not dates, numbers or UIDs.
PREFIX_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
#: VRs that hold one value only (a backslash is part of the text).
SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT", "UR"})
#: Attributes the receiver needs to file the instance: never removed.
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
#: Attributes no route may give one fixed value (it would make every instance the same one,
#: or change the SOP class the association was negotiated for).
NOT_SETTABLE = ("SOPClassUID", "SOPInstanceUID")

SET_HELP = ("Attributes given a fixed value in the copy sent: DICOM keyword -> value, as text "
            "valid for its VR (several values separated by a backslash)")
REMOVE_HELP = "DICOM keywords removed from the copy sent"
PREFIX_HELP = ("Text put before the value of these attributes in the copy sent: DICOM keyword "
               "-> prefix (text VRs only, e.g. PatientID = \"X-\"); an empty value stays empty")
DEIDENTIFY_HELP = ("De-identify the copy sent with the Basic Application Level "
                   "Confidentiality Profile (PS3.15 Annex E); UIDs are replaced consistently, "
                   "the mapping is kept on the box")


def vr_of(keyword: str) -> str:
    """The dictionary VR of a DICOM keyword; ValueError naming the keyword when unknown."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        close = difflib.get_close_matches(keyword, list(keyword_dict), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{keyword!r} is not a DICOM keyword{hint}")
    if tag >> 16 == 0x0002:
        raise ValueError(f"{keyword}: a File Meta attribute cannot be changed by a route")
    return dictionary_VR(tag)


def split_values(vr: str, text: str) -> list[str]:
    """'A\\B' -> ['A', 'B'] for multi-valued VRs; one value otherwise."""
    return [text] if vr in SINGLE_VALUE_VRS else text.split("\\")


def value_problem(vr: str, text: str) -> str | None:
    """Why `text` is not a valid value for `vr` in its DICOM form, or None."""
    for value in split_values(vr, text):
        try:
            stored = checked_value(vr, value)
        except ValueProblem as exc:
            return str(exc)
        if stored != (value if vr in FREE_TEXT else value.strip()):
            return f"not in DICOM form (write {stored!r})"
    return None


def check_set(rules: dict[str, str]) -> dict[str, str]:
    for keyword, value in rules.items():
        vr = vr_of(keyword)
        if keyword in NOT_SETTABLE:
            raise ValueError(f"{keyword}: cannot be set to one value for every instance")
        if vr not in TEXT_VRS:
            raise ValueError(f"{keyword}: has VR {vr}; set takes only text VRs "
                             f"({', '.join(sorted(TEXT_VRS))})")
        problem = value_problem(vr, value)
        if problem:
            raise ValueError(f"{keyword}: {value!r} is not a valid {vr} value: {problem}")
    return rules


def check_remove(keywords: list[str]) -> list[str]:
    for keyword in keywords:
        vr_of(keyword)
        if keyword in REQUIRED_UIDS:
            raise ValueError(f"{keyword}: cannot be removed, the receiver needs it to file the "
                             "instance")
        if keyword == "PixelData":
            raise ValueError("PixelData: cannot be removed, pixel data is always sent as stored")
    return keywords


def check_prefix(rules: dict[str, str]) -> dict[str, str]:
    for keyword, prefix in rules.items():
        vr = vr_of(keyword)
        if vr not in PREFIX_VRS:
            raise ValueError(f"{keyword}: has VR {vr}; prefix takes only character string VRs "
                             f"({', '.join(sorted(PREFIX_VRS))})")
        if not prefix:
            raise ValueError(f"{keyword}: the prefix is empty")
        if "\\" in prefix:
            raise ValueError(f"{keyword}: the prefix must not contain a backslash")
        problem = value_problem(vr, prefix)
        if problem:
            raise ValueError(f"{keyword}: {prefix!r} is not valid in a {vr} value: {problem}")
    return rules


def check_route_rules(route):
    """After validation of a whole route: one rule per keyword across set, remove, prefix."""
    seen: dict[str, str] = {}
    for key in ("set", "remove", "prefix"):
        for keyword in getattr(route, key):
            if keyword in seen:
                raise ValueError(f"{keyword} is in both {seen[keyword]} and {key}: give it one "
                                 "rule")
            seen[keyword] = key
    return route


CoercionSet = Annotated[dict[str, str], AfterValidator(check_set)]
CoercionRemove = Annotated[list[str], AfterValidator(check_remove)]
CoercionPrefix = Annotated[dict[str, str], AfterValidator(check_prefix)]
