"""C-FIND over the local store (PS3.4 C.4.1): the matches of a checked request, as the DICOM
JSON of the requested attributes, one per patient, study, series or instance held.

Every key of the level and the levels above it is a matching key (the shared matcher,
appliance.dicom.matching: single value, wildcard, range, list of UIDs, universal; a value held
with several values matches when one does; PN compared as stored, case-sensitively), except
the computed counts, which are return keys only, and sequences, returned but not matched. Keys
of levels below the query level, and keys we do not know, are returned empty. Each answer
carries the Query/Retrieve Level, and Retrieve AE Title (our own) when asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from appliance.dicom.matching import CHARSET_TAG, Condition, condition, json_values, requested
from appliance.query.models import COMPUTED, COMPUTED_MATCHING, UNIQUE_COLUMN, keys_up_to
from appliance.query.records import groups, held, record, rows
from appliance.query.request import LEVEL_TAG, QueryRequest

log = logging.getLogger(__name__)

RETRIEVE_AET_TAG = "00080054"


def conditions(request: QueryRequest) -> list[tuple[str, Condition]]:
    """The identifier's matching keys (tag, condition); universal ones left out."""
    known = keys_up_to(request.model, request.level)
    computed = set(COMPUTED[request.level]) | set(COMPUTED["PATIENT"])
    out = []
    for tag, element in request.identifier.items():
        if tag in (LEVEL_TAG, CHARSET_TAG, RETRIEVE_AET_TAG):
            continue
        keyword = keyword_for_tag(int(tag, 16))
        if keyword not in known or element.get("vr") == "SQ":
            continue
        if keyword in computed and keyword not in COMPUTED_MATCHING:
            continue
        cond = condition(keyword, known[keyword], json_values(element), fold=False)
        if cond is not None:
            out.append((tag, cond))
    return out


def find(db, root: Path, request: QueryRequest, ae_title: str) -> Iterator[dict[str, Any]]:
    """The answers (DICOM JSON), found lazily: one header read per candidate group."""
    matching = conditions(request)
    where = dict(request.above)
    own = request.level_values()
    if own and not any("*" in v or "?" in v for v in own):
        where[UNIQUE_COLUMN[request.level]] = own
    patients: dict[str, list] = {}  # the Study Root's patient counts, per patient
    want_patient = request.model == "study" and request.level == "STUDY" and any(
        f"{tag_for_keyword(k):08X}" in request.identifier for k in COMPUTED["PATIENT"])
    for _, group in groups(rows(db, root, where), request.level):
        group = held(group)
        if not group:
            continue
        patient = None
        if want_patient:
            pid = group[0].patient_id
            if pid not in patients:
                patients[pid] = held(rows(db, root, {"patient_id": [pid]}))
            patient = patients[pid]
        try:
            found = record(request.model, request.level, group, patient)
        except Exception as exc:  # unreadable header: the file is reported, the rest answered
            log.warning("Query/Retrieve: cannot read %s: %s", group[0].path, exc)
            continue
        if all(cond.matches(json_values(found.get(tag)), False) for tag, cond in matching):
            yield answer(request, found, ae_title)


def answer(request: QueryRequest, found: dict[str, Any], ae_title: str) -> dict[str, Any]:
    out = requested(request.identifier, found)
    out[LEVEL_TAG] = {"vr": "CS", "Value": [request.level]}
    if RETRIEVE_AET_TAG in request.identifier:
        out[RETRIEVE_AET_TAG] = {"vr": "AE", "Value": [ae_title]}
    return out
