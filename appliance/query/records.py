"""What the Query/Retrieve SCP knows of the instances held locally: the `instances` index rows,
grouped per patient, study, series or instance, and each group's attributes as DICOM JSON.

The index keeps only what the receive path needs (UIDs, Patient ID and Name, Modality, SOP
class, transfer syntax, path). The other attributes (Study Date, Accession Number, Series
Number, ...) are read here, at query time, from the header of one file of each group (pixel
data never read): the receive path, benchmarked, stays as it is, no migration is needed, and an
answer shows what the file holds. The cost is one header read per matching candidate group
(about 0.5 ms for a small image on the 2-core x86 test machine): a query over thousands of
studies takes seconds, which suits a box that holds days of images, not a PACS. Computed
attributes (Number of ... Related ..., Modalities in Study, SOP Classes in Study) are counted
over the index rows. Rows are removed with their files (retention), so only instances still
held are found; a file that has gone without its row is left out too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.datadict import tag_for_keyword

from appliance.query.models import COMPUTED, UNIQUE_COLUMN, keys_up_to

log = logging.getLogger(__name__)

ROW_COLUMNS = ("sop_instance_uid", "sop_class_uid", "study_uid", "series_uid", "patient_id",
               "modality", "transfer_syntax", "path")


@dataclass(frozen=True)
class Row:
    """One instance of the index."""

    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    modality: str
    transfer_syntax: str
    path: Path


def rows(db, root: Path, where: dict[str, list[str]]) -> list[Row]:
    """The index rows whose columns hold one of the given values (`{"study_uid": [...]}`), in
    a stable order (study, series, received)."""
    clauses, params = [], []
    for column, values in where.items():
        if column not in UNIQUE_COLUMN.values():
            raise ValueError(f"not a key column: {column}")
        clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    sql = (f"SELECT {', '.join(ROW_COLUMNS)} FROM instances"
           f" WHERE {' AND '.join(clauses) or '1'}"
           " ORDER BY patient_id, study_uid, series_uid, received_at, id")
    out = []
    for row in db.connection().execute(sql, params):
        values = dict(zip(ROW_COLUMNS, row, strict=True))
        values["path"] = root / values["path"]
        out.append(Row(**values))
    return out


def groups(all_rows: list[Row], level: str) -> Iterator[tuple[str, list[Row]]]:
    """The rows grouped by the level's unique key, in order of first appearance."""
    column = UNIQUE_COLUMN[level]
    grouped: dict[str, list[Row]] = {}
    for row in all_rows:
        grouped.setdefault(getattr(row, column), []).append(row)
    yield from grouped.items()


def held(group: list[Row]) -> list[Row]:
    """The rows whose file is still there."""
    return [row for row in group if os.path.exists(row.path)]


def record(model: str, level: str, group: list[Row],
           patient: list[Row] | None = None) -> dict[str, Any]:
    """The attributes of a group as DICOM JSON: header attributes of the levels up to `level`
    from the first file of the group, computed ones over its rows (all the rows of the
    patient/study/series it stands for) and, at the Study Root's STUDY level, the patient's
    over `patient` (the patient's rows)."""
    keys = keys_up_to(model, level)
    header = {k: v for k, v in keys.items()
              if k not in COMPUTED[level] and k not in COMPUTED["PATIENT"]}
    out = _header(group[0].path, header)
    out.update(_computed(level, group))
    if model == "study" and level == "STUDY" and patient is not None:
        out.update(_computed("PATIENT", patient))
    return out


def _header(path: Path, keys: dict[str, str]) -> dict[str, Any]:
    tags = [tag_for_keyword(k) for k in keys]
    # the file's Specific Character Set is read too, so its text comes out as Unicode
    ds = dcmread(path, stop_before_pixels=True, specific_tags=[0x00080005, *tags])
    data = ds.to_json_dict(suppress_invalid_tags=True)
    data.pop("00080005", None)
    return data


def _is(value: int) -> dict:
    return {"vr": "IS", "Value": [value]}


def _computed(level: str, related: list[Row]) -> dict[str, Any]:
    tag = {k: f"{tag_for_keyword(k):08X}" for k in COMPUTED[level]}
    if level == "PATIENT":
        return {tag["NumberOfPatientRelatedStudies"]: _is(len({r.study_uid for r in related})),
                tag["NumberOfPatientRelatedSeries"]: _is(len({r.series_uid for r in related})),
                tag["NumberOfPatientRelatedInstances"]: _is(len(related))}
    if level == "STUDY":
        modalities = sorted({r.modality for r in related if r.modality})
        classes = sorted({r.sop_class_uid for r in related})
        return {tag["ModalitiesInStudy"]: {"vr": "CS", "Value": modalities} if modalities
                else {"vr": "CS"},
                tag["SOPClassesInStudy"]: {"vr": "UI", "Value": classes},
                tag["NumberOfStudyRelatedSeries"]: _is(len({r.series_uid for r in related})),
                tag["NumberOfStudyRelatedInstances"]: _is(len(related))}
    if level == "SERIES":
        return {tag["NumberOfSeriesRelatedInstances"]: _is(len(related))}
    return {}
