"""The one check of DICOM values against their VR (PS3.5 6.2): used by every worklist feeder
(JSON and CSV import, the web form and API, HL7 orders, the upstream proxy) through
`items_from_dataset`, and by the C-FIND matcher (appliance.dicom.matching) for date and time
range bounds, and by the forward routes' `set` and `prefix` values
(appliance.forward.coercion_config), which must already be in their DICOM form.

`checked_value(vr, value)` returns the form to store or raises `ValueProblem` with the reason:
DA is a real calendar date YYYYMMDD, TM is HH[MM[SS[.F{1,6}]]] within range, DT combines them
with an optional UTC offset, PN has at most five components per group and 64 characters a
group, AE is 16 characters without a backslash or control character and not all spaces, CS is
16 of A-Z 0-9 space and underscore, UI is 64 of digits and dots without leading zeros, and the
text VRs keep their lengths and character repertoire (no control characters, except CR, LF, FF
and TAB in ST, LT and UT). A few loose forms that people type are taken and normalised: dates
as 2026-12-03, times as 14:00 or 14:00:30, lower-case code strings, spaces around an AE title;
`check_dataset` records each such change so the caller can say what was stored.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import keyword_for_tag

#: Maximum length in characters of one value (PS3.5 Table 6.2-1); PN counts per group.
MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64,
              "LT": 10240, "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64}
#: VRs whose values are one text that may hold CR, LF, FF and TAB (and a backslash).
FREE_TEXT = frozenset({"LT", "ST", "UT"})
#: VRs limited to the default character repertoire (ASCII).
DEFAULT_REPERTOIRE = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
SPS_TAG = "00400100"

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,6})?)?)?")
_COLON_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?")
_DT = re.compile(r"(\d{4})(?:(\d{2})(?:(\d{2})(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?"
                 r"([+-]\d{4})?")
_CS = re.compile(r"[A-Z0-9 _]*")
_UID = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
_DS = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_IS = re.compile(r"[+-]?\d+")
_AS = re.compile(r"\d{3}[DWMY]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FREE_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")  # TAB LF FF CR allowed


class ValueProblem(ValueError):
    """A value does not fit its VR; the message says why (without the attribute's name)."""


@dataclass(frozen=True)
class Change:
    """A loose value stored in its DICOM form."""

    attribute: str
    given: str
    stored: str

    def __str__(self) -> str:
        return f"{self.attribute} {self.given!r} stored as {self.stored!r}"


def date_value(value: str) -> str:
    """A DICOM date (YYYYMMDD, a real calendar date); 2026-12-03 is taken as 20261203."""
    text = value.strip()
    match = _DATE.fullmatch(text) or _ISO_DATE.fullmatch(text)
    if not match:
        raise ValueProblem(f"{value!r} is not a DICOM date: write YYYYMMDD (e.g. 20261203) or "
                           "YYYY-MM-DD")
    year, month, day = (int(g) for g in match.groups())
    try:
        datetime.date(year, month, day)
    except ValueError as exc:
        raise ValueProblem(f"{value!r} is not a calendar date ({exc})") from None
    return "".join(match.groups())


def time_value(value: str) -> str:
    """A DICOM time (HH[MM[SS[.FFFFFF]]] in range); 14:00 is taken as 1400."""
    text = value.strip()
    colon = _COLON_TIME.fullmatch(text)
    if colon:
        hours, minutes, seconds, fraction = colon.groups()
        text = f"{int(hours):02d}{minutes}{seconds or ''}{fraction or ''}"
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueProblem(f"{value!r} is not a DICOM time: write HHMM, HHMMSS(.FFFFFF) or HH:MM")
    hours, minutes, seconds, _ = match.groups()
    if int(hours) > 23 or int(minutes or 0) > 59 or int(seconds or 0) > 60:
        raise ValueProblem(f"{value!r} is not a time of day (hours 00-23, minutes and "
                           "seconds 00-59)")
    return text


def datetime_value(value: str) -> str:
    """A DICOM date-time: YYYY[MM[DD[HH[MM[SS[.F]]]]]] and an optional &ZZXX offset."""
    text = value.strip()
    match = _DT.fullmatch(text)
    if not match:
        raise ValueProblem(f"{value!r} is not a date-time (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    year, month, day, clock, offset = match.groups()
    try:
        datetime.date(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise ValueProblem(f"{value!r} is not a calendar date ({exc})") from None
    if clock:
        time_value(clock)
    if offset and (int(offset[1:3]) > 14 or int(offset[3:]) > 59):
        raise ValueProblem(f"{value!r} has an impossible UTC offset {offset}")
    return text


def person_name(value: Any) -> Any:
    """A PN value: a string or the DICOM JSON {Alphabetic, Ideographic, Phonetic} object."""
    groups = value if isinstance(value, dict) else {"Alphabetic": value}
    out = {}
    for group, text in groups.items():
        if group not in ("Alphabetic", "Ideographic", "Phonetic"):
            raise ValueProblem(f"unknown person name group {group!r}")
        if not isinstance(text, str):
            raise ValueProblem(f"the {group} group must be text")
        text = text.strip()
        if len(text) > MAX_LENGTH["PN"]:
            raise ValueProblem(f"the {group} group has {len(text)} characters (at most 64)")
        if text.count("^") > 4:
            raise ValueProblem(f"{text!r} has more than five components (family^given^"
                               "middle^prefix^suffix)")
        if "=" in text or "\\" in text or _CONTROL.search(text):
            raise ValueProblem(f"{text!r} holds '=', a backslash or a control character")
        if text:
            out[group] = text
    return out if isinstance(value, dict) else out.get("Alphabetic", "")


def checked_value(vr: str, value: Any) -> Any:
    """The value to store for one value of this VR, or ValueProblem saying why not."""
    if vr == "PN":
        return person_name(value)
    if vr in ("DS", "IS", "US", "UL", "SS", "SL", "FL", "FD") and not isinstance(value, str):
        return _number(vr, value)
    if not isinstance(value, str):
        raise ValueProblem(f"{value!r} is not text")
    if vr in DEFAULT_REPERTOIRE and not value.isascii():
        raise ValueProblem(f"{value!r} has characters outside the default repertoire (ASCII)")
    bad = _FREE_TEXT_CONTROL if vr in FREE_TEXT else _CONTROL
    if bad.search(value):
        raise ValueProblem(f"{value!r} holds a control character")
    if vr not in FREE_TEXT and "\\" in value:
        raise ValueProblem(f"{value!r} holds a backslash (the separator of multiple values)")
    text = value if vr in FREE_TEXT else value.strip()
    text = {"DA": date_value, "TM": time_value, "DT": datetime_value,
            "AE": _application_entity, "CS": _code_string, "UI": _uid,
            "DS": _decimal, "IS": _integer, "US": _integer, "AS": _age}.get(vr, lambda v: v)(text)
    limit = MAX_LENGTH.get(vr)
    if limit is not None and len(text) > limit:
        raise ValueProblem(f"{text!r} exceeds the maximum length of {limit} allowed for VR {vr} "
                           f"({len(text)} characters, at most {limit})")
    return text


def check_dataset(data: dict[str, Any], changes: list[Change], path: str = "") -> None:
    """Check (and normalise in place) every value of a DICOM JSON data set and its sequence
    items; loose values stored in their DICOM form are added to `changes`. Raises
    ValueProblem naming the attribute."""
    for tag, elem in data.items():
        if not isinstance(elem, dict):
            raise ValueProblem(f"{_name(tag, path)}: not a DICOM JSON element")
        vr = elem.get("vr")
        values = elem.get("Value")
        if not values:
            continue
        name = _name(tag, path)
        if not isinstance(values, list):
            raise ValueProblem(f"{name}: 'Value' must be a list")
        if vr == "SQ":
            for index, item in enumerate(values):
                if not isinstance(item, dict):
                    raise ValueProblem(f"{name} item {index + 1}: not a data set")
                # the scheduled step's attributes are named as if at the top: no two share one
                check_dataset(item, changes, "" if tag.upper() == SPS_TAG else f"{name} > ")
            continue
        stored = []
        for value in values:
            if value is None or value == "":
                continue
            try:
                new = checked_value(vr, value)
            except ValueProblem as exc:
                raise ValueProblem(f"{name}: {exc}") from None
            if isinstance(new, str) and isinstance(value, str) and new != value.strip() \
                    and vr not in FREE_TEXT:
                changes.append(Change(name, value, new))
            stored.append(new)
        stored = [v for v in stored if v not in ("", {})]
        if stored:
            elem["Value"] = stored
        else:
            del elem["Value"]


def _name(tag: str, path: str) -> str:
    try:
        keyword = keyword_for_tag(int(tag, 16))
    except ValueError:
        keyword = ""
    label = f"({tag[:4]},{tag[4:]})"
    return f"{path}{keyword} {label}" if keyword else f"{path}{label}"


def _application_entity(text: str) -> str:
    if not text:
        raise ValueProblem("an AE title may not be all spaces")
    return text


def _code_string(text: str) -> str:
    upper = text.upper()
    if not _CS.fullmatch(upper):
        raise ValueProblem(f"{text!r} is not a code string (A-Z, 0-9, space and underscore)")
    return upper


def _uid(text: str) -> str:
    text = text.rstrip("\0")
    if not _UID.fullmatch(text):
        raise ValueProblem(f"{text!r} is not a UID (digits and dots, no leading zeros in a "
                           "component)")
    return text


def _decimal(text: str) -> str:
    if not _DS.fullmatch(text):
        raise ValueProblem(f"{text!r} is not a decimal number")
    return text


def _integer(text: str) -> str:
    if not _IS.fullmatch(text) or not -(2**31) <= int(text) < 2**31:
        raise ValueProblem(f"{text!r} is not an integer string")
    return text


def _age(text: str) -> str:
    if not _AS.fullmatch(text):
        raise ValueProblem(f"{text!r} is not an age (nnnD, nnnW, nnnM or nnnY)")
    return text


def _number(vr: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem(f"{value!r} is not a number")
    if vr in ("US", "UL", "SS", "SL", "IS") and not float(value).is_integer():
        raise ValueProblem(f"{value!r} is not an integer")
    bounds = {"US": (0, 65535), "UL": (0, 2**32 - 1), "SS": (-(2**15), 2**15 - 1),
              "SL": (-(2**31), 2**31 - 1), "IS": (-(2**31), 2**31 - 1)}.get(vr)
    if bounds and not bounds[0] <= value <= bounds[1]:
        raise ValueProblem(f"{value!r} is out of range for {vr}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueProblem(f"{value!r} is not a finite number")
    return value
