"""Matching a C-FIND identifier's keys against stored values, for every C-FIND SCP of the box
(the Modality Worklist, PS3.4 C.2.2.2 and K.6; Query/Retrieve, C.2.2.2 and C.6): one matcher.

Values are DICOM JSON (PS3.18 F.2: the query's Specific Character Set already decoded to
Unicode). `condition()` turns one key into a `Condition` (or None for universal matching):
single value, wildcard (`*`, `?`), DA/TM/DT range (`a-b`, `a-`, `-b`), list of UIDs. A stored
empty value matches only universal matching; a value stored with several values matches when
any one of them does (as DCMTK does); PN single values and wildcards may be compared
case-insensitively (`fold`). Sequence matching is the caller's (it knows which items to look
at); `requested()` keeps only the requested attributes of a match, sequences included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from appliance.core.errors import ApplianceError
from appliance.dicom.values import date_value, time_value

CHARSET_TAG = "00080005"


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


def normalise_date(value: str) -> str:
    """A DICOM date (YYYYMMDD, a real calendar date) or ValueError; 2026-12-03 is taken."""
    return date_value(value)


def normalise_time(value: str) -> str:
    """A DICOM time (HHMMSS.FFFFFF and its partial forms) or ValueError; 14:00 is taken."""
    return time_value(value)


def pad_time(value: str, upper: bool = False) -> str:
    """'1030' -> '103000.000000' (or '103059.999999' as an upper bound)."""
    whole, _, fraction = value.partition(".")
    whole += ("5959" if upper else "0000")[len(whole) - 2:]
    fraction = (fraction + ("9" if upper else "0") * 6)[:6]
    return f"{whole}.{fraction}"


class QueryError(ApplianceError, ValueError):
    """The identifier cannot be used (e.g. a malformed date range): status 0xA900."""


@dataclass
class Condition:
    """One matching key: `kind` is single, wildcard, range or uids."""

    keyword: str
    vr: str
    kind: str
    values: list[str]
    low: str = ""
    high: str = ""
    pattern: re.Pattern | None = None

    def matches(self, stored: list[str], fold: bool) -> bool:
        if not stored:
            return False  # a stored empty value matches only universal matching
        if self.kind == "uids":
            return any(v in self.values for v in stored)
        if self.kind == "range":
            return any(self.low <= bound <= self.high for bound in _stored_bounds(self.vr, stored))
        if self.kind == "wildcard":
            return any(self.pattern.fullmatch(v) for v in stored)
        want = self.values[0]
        if self.vr == "PN":
            if fold:
                return any(v.casefold() == want.casefold() for v in stored)
            return want in stored
        return any(v.strip() == want for v in stored)


def _stored_bounds(vr: str, stored: list[str]) -> list[str]:
    """The stored values as range bounds; a value no longer valid (stored by older firmware,
    which checked less) matches no range instead of failing the query."""
    out = []
    for value in stored:
        try:
            out.append(_bound(vr, value))
        except ValueError:
            continue
    return out


def _bound(vr: str, value: str) -> str:
    if vr == "DA":
        return normalise_date(value)
    if vr == "TM":
        return pad_time(normalise_time(value))
    return _dt_bound(value, upper=False)


def _dt_bound(value: str, upper: bool) -> str:
    value = re.split(r"[+-]", value.strip(), maxsplit=1)[0] if len(value) > 8 else value.strip()
    date, time_ = value[:8], value[8:]
    if not re.fullmatch(r"\d{4}(\d{2}(\d{2})?)?", date):
        raise QueryError(f"{value!r} is not a DICOM date-time")
    date += ("1231" if upper else "0101")[len(date) - 4:]
    return date + pad_time(normalise_time(time_) if time_ else ("23" if upper else "00"), upper)


def condition(keyword: str, vr: str, values: list[str], fold: bool) -> Condition | None:
    """The matching kind of one key, or None for universal matching."""
    if not values:
        return None
    if vr == "UI":
        return Condition(keyword, vr, "uids", [v.strip() for v in values])
    text = "\\".join(values)
    if vr in ("DA", "TM", "DT"):
        low, sep, high = text.partition("-") if vr != "DT" else _split_dt(text)
        single = not sep
        try:
            if vr == "DA":
                lo = normalise_date(low) if low else "00000000"
                hi = lo if single else normalise_date(high) if high else "99999999"
            elif vr == "TM":
                lo = pad_time(normalise_time(low)) if low else "000000.000000"
                end = low if single else high
                hi = pad_time(normalise_time(end), upper=True) if end else "235959.999999"
            else:
                lo = _dt_bound(low, False) if low else "0"
                end = low if single else high
                hi = _dt_bound(end, True) if end else "9"
        except ValueError as exc:
            raise QueryError(f"{keyword}: {exc}") from None
        return Condition(keyword, vr, "range", [text], lo, hi)
    if text.strip() == "*":
        return None
    if "*" in text or "?" in text:
        regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
        flags = re.S | (re.I if fold and vr == "PN" else 0)
        return Condition(keyword, vr, "wildcard", [text], pattern=re.compile(regex, flags))
    return Condition(keyword, vr, "single", [text if vr == "PN" else text.strip()])


def _split_dt(text: str) -> tuple[str, str, str]:
    # A DT may carry a UTC offset (+hhmm/-hhmm): split the range on a '-' that is not one.
    match = re.fullmatch(r"([^-]*(?:[+-]\d{4})?)-(.*)", text)
    return (match.group(1), "-", match.group(2)) if match else (text, "", "")


def requested(query: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Only the attributes `query` asks for, from `item` (absent ones empty; a sequence key's
    item names what to return of each stored item)."""
    out = {}
    for tag, q_elem in query.items():
        if tag == CHARSET_TAG:
            continue
        stored = item.get(tag)
        vr = q_elem.get("vr")
        if vr == "SQ":
            q_items = q_elem.get("Value") or []
            s_items = (stored or {}).get("Value") or []
            if q_items and q_items[0]:
                out[tag] = {"vr": "SQ", "Value": [requested(q_items[0], s) for s in s_items]}
            elif s_items:
                out[tag] = {"vr": "SQ", "Value": s_items}
            else:
                out[tag] = {"vr": "SQ"}
        elif stored and stored.get("Value"):
            out[tag] = {"vr": stored.get("vr", vr), "Value": stored["Value"]}
        else:
            out[tag] = {"vr": vr} if vr else {"vr": "UN"}
    return out
