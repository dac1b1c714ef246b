"""QIDO-RS (PS3.18 10.6) over the local store: the query parameters of a search become the
same checked request (`appliance.query.request.QueryRequest`, Study Root model) that a C-FIND
identifier becomes, and `appliance.query.find` answers both, with the one matcher.

Matching keys are attribute keywords or tags (`PatientID=P1`, `00100020=P1`) of the search's
level and the levels above it, as for C-FIND (single value, `*`/`?` wildcards, DA/TM/DT
ranges, UID lists separated by `,` or `\\`); `includefield` (keywords, tags or `all`), `limit`,
`offset` and `fuzzymatching` (only `false` is done: `true` is answered with literal matching
and a Warning header). Anything else is a `BadRequest` naming the parameter and the reason.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from appliance.dicom.matching import QueryError
from appliance.dicomweb.errors import BadRequest
from appliance.query.find import conditions, find
from appliance.query.models import (
    COMPUTED,
    COMPUTED_MATCHING,
    LEVELS,
    UNIQUE_COLUMN,
    UNIQUE_KEY,
    keys_up_to,
)
from appliance.query.request import LEVEL_TAG, QueryRequest

log = logging.getLogger(__name__)

MODEL = "study"
#: The most answers one search returns; more are announced with a Warning header.
MAX_RESULTS = 1000
INSTANCE_AVAILABILITY = "00080056"
RETRIEVE_URL = "00081190"

#: The attributes every answer carries (PS3.18 Tables 10.6.3-3 to -5, those we hold), by level.
DEFAULT_RETURN = {
    "STUDY": ("StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy",
              "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate",
              "PatientSex", "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances"),
    "SERIES": ("Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns",
              "NumberOfFrames"),
}
CONTROL_PARAMETERS = ("limit", "offset", "fuzzymatching", "includefield")


@dataclass
class Search:
    """A checked QIDO-RS search: the C-FIND request it stands for, paging and warnings."""

    request: QueryRequest
    limit: int = MAX_RESULTS
    offset: int = 0
    warnings: list[str] = field(default_factory=list)


def attribute(name: str) -> tuple[str, str]:
    """(keyword, 8-digit tag) of a parameter naming an attribute, or BadRequest."""
    if "." in name:
        raise BadRequest(f"{name}: sequence attributes cannot be matched here")
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        keyword = keyword_for_tag(int(name, 16))
        if not keyword:
            raise BadRequest(f"{name}: not a known attribute tag")
        return keyword, name.upper()
    tag = tag_for_keyword(name)
    if tag is None:
        raise BadRequest(f"{name}: not a DICOM attribute keyword or tag (nor one of "
                         f"{', '.join(CONTROL_PARAMETERS)})")
    return name, f"{tag:08X}"


def _count(name: str, text: str) -> int:
    if not re.fullmatch(r"\d{1,9}", text.strip()):
        raise BadRequest(f"{name}: must be a whole number of 0 or more, got {text!r}")
    return int(text)


def _element(keyword: str, vr: str, value: str) -> dict[str, Any]:
    if value == "":
        return {"vr": vr}
    if vr == "UI":
        values = [v.strip() for v in re.split(r"[,\\]", value) if v.strip()]
        return {"vr": vr, "Value": values}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": value}]}
    return {"vr": vr, "Value": [value]}


def parse(level: str, params: list[tuple[str, str]], study: str | None = None,
          series: str | None = None) -> Search:
    """The search at `level` (STUDY, SERIES or IMAGE) for the query parameters, below the
    study/series the path names."""
    known = keys_up_to(MODEL, level)
    return_only = (set(COMPUTED[level]) | set(COMPUTED["PATIENT"])) - COMPUTED_MATCHING
    identifier: dict[str, Any] = {}
    above: dict[str, list[str]] = {}
    search = Search(QueryRequest({}, MODEL, level, above))
    include: list[str] = []
    seen: set[str] = set()
    for name, value in params:
        if name == "limit":
            search.limit = min(_count(name, value), MAX_RESULTS) if value else MAX_RESULTS
            continue
        if name == "offset":
            search.offset = _count(name, value)
            continue
        if name == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise BadRequest(f"fuzzymatching: must be true or false, got {value!r}")
            if value.lower() == "true":
                search.warnings.append('299 appliance "The fuzzymatching parameter is not '
                                       'supported. Only literal matching has been performed."')
            continue
        if name == "includefield":
            include += [v.strip() for v in value.split(",") if v.strip()]
            continue
        keyword, tag = attribute(name)
        if keyword not in known:
            keys = ", ".join(sorted(k for k in known if k not in return_only))
            raise BadRequest(f"{name}: not a matching key of a {level.lower()} level search "
                             f"(keys: {keys})")
        if keyword in return_only:
            raise BadRequest(f"{name}: a computed attribute, returned but not matched")
        if tag in seen:
            raise BadRequest(f"{name}: given more than once")
        seen.add(tag)
        identifier[tag] = _element(keyword, known[keyword], value)
    for column, uid in (("study_uid", study), ("series_uid", series)):
        if uid is not None:
            above[column] = [uid]
    _narrow(identifier, level, above)
    for keyword in _returned(level, include, known, study, series):
        identifier.setdefault(f"{tag_for_keyword(keyword):08X}", {"vr": known[keyword]})
    for keyword, uid in (("StudyInstanceUID", study), ("SeriesInstanceUID", series)):
        if uid is not None:
            identifier[f"{tag_for_keyword(keyword):08X}"] = {"vr": "UI", "Value": [uid]}
    identifier[LEVEL_TAG] = {"vr": "CS", "Value": [level]}
    search.request = QueryRequest(identifier, MODEL, level, above)
    try:
        conditions(search.request)  # a malformed date range is refused now, not mid-answer
    except QueryError as exc:
        raise BadRequest(str(exc)) from None
    return search


def _narrow(identifier: dict[str, Any], level: str, above: dict[str, list[str]]) -> None:
    """UIDs of the levels above given without wildcards select index rows directly (a
    relational search reads only their headers)."""
    levels = LEVELS[MODEL]
    for upper in levels[:levels.index(level)]:
        keyword = UNIQUE_KEY[upper]
        element = identifier.get(f"{tag_for_keyword(keyword):08X}")
        values = (element or {}).get("Value") or []
        if values and not any("*" in v or "?" in v for v in values):
            above.setdefault(UNIQUE_COLUMN[upper], list(values))


def _returned(level: str, include: list[str], known: dict[str, str], study: str | None,
              series: str | None) -> list[str]:
    """The attributes to return: the level's defaults, those of the levels above not fixed
    by the path, and `includefield` (`all`: every attribute we hold at this level; an
    attribute we do not hold at this level is left out, as the standard allows)."""
    levels = LEVELS[MODEL]
    fixed = {"STUDY": study is not None, "SERIES": series is not None, "IMAGE": False}
    out: list[str] = []
    for name in levels[:levels.index(level) + 1]:
        if name == level or not fixed[name]:
            out += [k for k in DEFAULT_RETURN[name] if k in known]
    for name in include:
        if name.lower() == "all":
            out += list(known)
            continue
        keyword, _ = attribute(name)
        if keyword in known:
            out.append(keyword)
    return out


def search(db, root: Path, query: Search, base_url: str) -> tuple[list[dict[str, Any]], bool]:
    """The answers of one page (DICOM JSON, tags in order) and whether more matched."""
    level = query.request.level
    found = find(db, root, query.request, "")
    page = list(itertools.islice(found, query.offset, query.offset + query.limit + 1))
    more = len(page) > query.limit
    out = []
    for answer in page[:query.limit]:
        answer.pop(LEVEL_TAG, None)
        if level in ("STUDY", "IMAGE"):
            answer[INSTANCE_AVAILABILITY] = {"vr": "CS", "Value": ["ONLINE"]}
        answer[RETRIEVE_URL] = {"vr": "UR", "Value": [base_url + resource_path(level, answer)]}
        out.append({tag: answer[tag] for tag in sorted(answer)})
    return out, more


def resource_path(level: str, answer: dict[str, Any]) -> str:
    """The WADO-RS path of an answer's study, series or instance."""
    def uid(keyword: str) -> str:
        element = answer.get(f"{tag_for_keyword(keyword):08X}") or {}
        return (element.get("Value") or [""])[0]

    path = f"/studies/{uid('StudyInstanceUID')}"
    if level in ("SERIES", "IMAGE"):
        path += f"/series/{uid('SeriesInstanceUID')}"
    if level == "IMAGE":
        path += f"/instances/{uid('SOPInstanceUID')}"
    return path
