"""Matching a Modality Worklist C-FIND identifier against stored items (PS3.4 C.2.2.2, K.6).

A `WorklistQuery` is built once per request from the identifier (in DICOM JSON form, so the
query's Specific Character Set has already been decoded to Unicode). It gives an SQL condition
over the indexed columns that selects a superset of the matches, and `matches()` then applies
the exact rules to each candidate: single value, universal, wildcard, DA/TM/DT range (Scheduled
Procedure Step Start Date and Time as one combined range), list of UIDs and sequence matching;
a stored empty value matches only a universal key. `answer()` keeps only the requested
attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import ApplianceError
from appliance.worklist.item import (
    SPS_TAG,
    json_values,
    normalise_date,
    normalise_time,
    pad_time,
    tag_of,
)
from appliance.worklist.keys import INDEXED_SPS, INDEXED_TOP, MATCHING_SPS, MATCHING_TOP

DATE_TAG, TIME_TAG = tag_of("ScheduledProcedureStepStartDate"), tag_of(
    "ScheduledProcedureStepStartTime")
CHARSET_TAG = "00080005"
CASE_FOLDED = {"patient_name", "referring_physician", "performing_physician"}


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


def _condition(keyword: str, vr: str, values: list[str], fold: bool) -> Condition | None:
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


@dataclass
class WorklistQuery:
    """A parsed identifier: conditions, the SQL prefilter and the requested attributes."""

    identifier: dict[str, Any]
    case_insensitive_names: bool = False
    station_aet: str | None = None
    top: list[tuple[str, Condition]] = field(default_factory=list)
    sps: list[tuple[str, Condition]] = field(default_factory=list)
    combined: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        fold = self.case_insensitive_names
        for keyword, vr in MATCHING_TOP.items():
            tag = tag_of(keyword)
            cond = _condition(keyword, vr, json_values(self.identifier.get(tag)), fold)
            if cond is not None:
                self.top.append((tag, cond))
        sps_query = self._sps_query_item()
        for keyword, vr in MATCHING_SPS.items():
            tag = tag_of(keyword)
            cond = _condition(keyword, vr, json_values(sps_query.get(tag)), fold)
            if cond is not None:
                self.sps.append((tag, cond))
        by_tag = dict(self.sps)
        if DATE_TAG in by_tag and TIME_TAG in by_tag:
            self.combined = self._combined(by_tag[DATE_TAG], by_tag[TIME_TAG])

    def _sps_query_item(self) -> dict[str, Any]:
        element = self.identifier.get(SPS_TAG)
        if not element or not element.get("Value"):
            return {}
        if len(element["Value"]) != 1:
            raise QueryError("ScheduledProcedureStepSequence in a query must have one item")
        return element["Value"][0] or {}

    @staticmethod
    def _combined(date: Condition, time_: Condition) -> tuple[str, str]:
        """SPS Start Date and Time matched as one date-time range (PS3.4 C.2.2.2.5)."""
        time_low, time_sep, time_high = time_.values[0].partition("-")
        low = ("" if date.low == "00000000" else
               date.low + (pad_time(normalise_time(time_low)) if time_low else "000000.000000"))
        end = time_high if time_sep else time_low
        high = ("99999999z" if date.high == "99999999" else
                date.high + (pad_time(normalise_time(end), upper=True) if end
                             else "235959.999999"))
        return low, high

    # -- SQL prefilter ----------------------------------------------------------------------

    def sql(self) -> tuple[str, list[str]]:
        """A condition over indexed columns selecting a superset of the matches (with every
        row that holds several values in one of them)."""
        clauses, params = [], []
        indexed = {tag_of(k): c for k, c in {**INDEXED_TOP, **INDEXED_SPS}.items()}
        for tag, cond in self.top + self.sps:
            column = indexed.get(tag)
            if column is None:
                continue
            fold = self.case_insensitive_names and column in CASE_FOLDED
            if fold:
                column += "_upper"
            if cond.kind == "single":
                clauses.append(f"{column} = ?")
                params.append(cond.values[0].upper() if fold else cond.values[0])
            elif cond.kind == "uids":
                clauses.append(f"{column} IN ({', '.join('?' for _ in cond.values)})")
                params.extend(cond.values)
            elif cond.kind == "wildcard":
                glob = re.sub(r"[\[\]]", lambda m: f"[{m.group(0)}]", cond.values[0])
                clauses.append(f"{column} GLOB ?")
                params.append(glob.upper() if fold else glob)
            elif cond.kind == "range" and cond.vr == "DA":
                clauses.append(f"{column} BETWEEN ? AND ?")
                params.extend([cond.low, cond.high])
        if self.station_aet is not None:
            clauses.append("station_aet = ?")
            params.append(self.station_aet)
        if not clauses:
            return "1", params
        # A row holding several values in a column (two station AE titles) matches when one of
        # them does, which no equality over the joined text can say: such rows are always
        # candidates, and `matches` decides (SQLite serves each side of the OR by an index).
        return f"({' AND '.join(clauses)}) OR multi_valued = 1", params

    # -- exact matching ---------------------------------------------------------------------

    def matches(self, item: dict[str, Any]) -> bool:
        fold = self.case_insensitive_names
        for tag, cond in self.top:
            if not cond.matches(json_values(item.get(tag)), fold):
                return False
        steps = (item.get(SPS_TAG) or {}).get("Value") or []
        if self.station_aet is not None and not any(
                self.station_aet in json_values(s.get(tag_of("ScheduledStationAETitle")))
                for s in steps):
            return False
        if not self.sps and not self.combined:
            return True
        return any(self._step_matches(step) for step in steps)

    def _step_matches(self, step: dict[str, Any]) -> bool:
        fold = self.case_insensitive_names
        for tag, cond in self.sps:
            if self.combined and tag in (DATE_TAG, TIME_TAG):
                continue
            if not cond.matches(json_values(step.get(tag)), fold):
                return False
        if self.combined:
            dates, times = json_values(step.get(DATE_TAG)), json_values(step.get(TIME_TAG))
            if not dates or not times:
                return False
            try:
                stamp = normalise_date(dates[0]) + pad_time(normalise_time(times[0]))
            except ValueError:  # stored by older firmware, which checked less
                return False
            low, high = self.combined
            return low <= stamp <= high
        return True

    # -- answers ----------------------------------------------------------------------------

    def answer(self, item: dict[str, Any]) -> dict[str, Any]:
        """Only the requested attributes (DICOM JSON); absent ones come back empty."""
        return _requested(self.identifier, item)


def _requested(query: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
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
                out[tag] = {"vr": "SQ", "Value": [_requested(q_items[0], s) for s in s_items]}
            elif s_items:
                out[tag] = {"vr": "SQ", "Value": s_items}
            else:
                out[tag] = {"vr": "SQ"}
        elif stored and stored.get("Value"):
            out[tag] = {"vr": stored.get("vr", vr), "Value": stored["Value"]}
        else:
            out[tag] = {"vr": vr} if vr else {"vr": "UN"}
    return out
