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

from appliance.dicom.matching import (
    Condition,
    QueryError,
    condition,
    json_values,
    normalise_date,
    normalise_time,
    pad_time,
    requested,
)
from appliance.worklist.item import SPS_TAG, tag_of
from appliance.worklist.keys import INDEXED_SPS, INDEXED_TOP, MATCHING_SPS, MATCHING_TOP

DATE_TAG, TIME_TAG = tag_of("ScheduledProcedureStepStartDate"), tag_of(
    "ScheduledProcedureStepStartTime")
CASE_FOLDED = {"patient_name", "referring_physician", "performing_physician"}


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
            cond = condition(keyword, vr, json_values(self.identifier.get(tag)), fold)
            if cond is not None:
                self.top.append((tag, cond))
        sps_query = self._sps_query_item()
        for keyword, vr in MATCHING_SPS.items():
            tag = tag_of(keyword)
            cond = condition(keyword, vr, json_values(sps_query.get(tag)), fold)
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
        return requested(self.identifier, item)
