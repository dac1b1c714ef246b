"""The worklist service API behind `appliance worklist import|export|list|delete` and the web
page: JSON (the DICOM JSON model, PS3.18 F.2, a list of data sets as pydicom's
`Dataset.to_json_dict()` writes them) and CSV (one column per attribute keyword) in and out.

An import is all or nothing: one bad item refuses the whole file with a message naming the item
(or CSV line) and the attribute. It streams: items are read, checked and written one at a time
inside one store transaction (rolled back at the first bad item), so memory does not grow with
the number of items (a CSV file is read line by line; a JSON document is parsed whole, as the
JSON model needs, but its items are not all turned into worklist items at once).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from appliance.core.errors import ApplianceError
from appliance.worklist.item import (
    SPS_TAG,
    ItemError,
    WorklistItem,
    element,
    items_from_dataset,
    json_text,
    tag_of,
)
from appliance.worklist.keys import SPS_ITEM, TOP_LEVEL
from appliance.worklist.store import STATUSES, StoredItem, WorklistStore

#: CSV columns, in export order: item attributes, then those of the scheduled step.
CSV_COLUMNS = [k for k in TOP_LEVEL if k != "SpecificCharacterSet"] + list(SPS_ITEM)
FORMATS = ("json", "csv")
#: Notes on values stored in DICOM form an import keeps (the others are counted).
MAX_NOTES = 100


class TransferError(ApplianceError, ValueError):
    """An import file or a request was refused; the message says why."""


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    #: Loose values stored in their DICOM form ("line 2: ... '2026-12-03' stored as ...").
    notes: list[str] = field(default_factory=list)
    #: Items that came without a Study Instance UID and were given one.
    generated_uids: int = 0
    #: Notes beyond MAX_NOTES, counted rather than kept.
    more_notes: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated"

    def details(self, limit: int | None = None) -> list[str]:
        """What was stored other than as given, one sentence a line (at most `limit` notes,
        then how many more)."""
        lines = list(self.notes[:limit])
        more = self.more_notes + max(0, len(self.notes) - (len(lines)))
        if more:
            lines.append(f"... and {more} more value(s) stored in DICOM form")
        if self.generated_uids:
            lines.append(f"{self.generated_uids} item(s) without a StudyInstanceUID were "
                         "given one")
        return lines


class WorklistAdmin:
    """Import, export, list and delete worklist items."""

    def __init__(self, store: WorklistStore):
        self.store = store

    # -- import -----------------------------------------------------------------------------

    def import_stream(self, stream: TextIO, fmt: str, source: str = "import") -> ImportResult:
        """Import a JSON or CSV file read from `stream`, all or nothing, one item at a time."""
        if fmt not in FORMATS:
            raise TransferError(f"format must be json or csv, got {fmt!r}")
        try:
            items = iter_json_items(stream.read()) if fmt == "json" else iter_csv_items(stream)
        except UnicodeDecodeError:
            raise TransferError("the file must be UTF-8 text") from None
        notes: list[str] = []
        counts = {"more_notes": 0, "generated_uids": 0}

        def noted(items: Iterable[WorklistItem]) -> Iterator[WorklistItem]:
            for item in items:
                room = MAX_NOTES - len(notes)
                notes.extend(item.notes[:max(room, 0)])
                counts["more_notes"] += max(len(item.notes) - max(room, 0), 0)
                counts["generated_uids"] += "StudyInstanceUID" in item.generated
                yield item

        try:
            created, updated = self.store.put(noted(items), source)
        except UnicodeDecodeError:
            raise TransferError("the file must be UTF-8 text") from None
        return ImportResult(created, updated, notes, **counts)

    # -- export and list --------------------------------------------------------------------

    def items(self, statuses: list[str] | None = None) -> list[StoredItem]:
        statuses = statuses or ["SCHEDULED"]
        for status in statuses:
            if status not in STATUSES:
                raise TransferError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        marks = ", ".join("?" for _ in statuses)
        return list(self.store.select(f"status IN ({marks})", tuple(statuses)))

    def export_text(self, fmt: str, statuses: list[str] | None = None) -> str:
        rows = self.items(statuses)
        if fmt == "json":
            charset = {"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]}}
            return json.dumps([{**charset, **row.item.data} for row in rows],
                              ensure_ascii=False, indent=1) + "\n"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([row.item.value(keyword) for keyword in CSV_COLUMNS])
        return out.getvalue()

    # -- delete -----------------------------------------------------------------------------

    def delete(self, ids: list[int] | None = None, accession: str | None = None,
               patient_id: str | None = None, everything: bool = False) -> int:
        if everything:
            return self.store.delete("1", ())
        clauses, params = [], []
        if ids:
            clauses.append(f"id IN ({', '.join('?' for _ in ids)})")
            params.extend(ids)
        if accession:
            clauses.append("accession_number = ?")
            params.append(accession)
        if patient_id:
            clauses.append("patient_id = ?")
            params.append(patient_id)
        if not clauses:
            raise TransferError("say which items to delete: IDs, --accession, --patient-id or "
                                "--all")
        return self.store.delete(" OR ".join(clauses), tuple(params))


def parse_json(text: str) -> list[WorklistItem]:
    return list(iter_json_items(text))


def parse_csv(text: str) -> list[WorklistItem]:
    return list(iter_csv_items(io.StringIO(text)))


def iter_json_items(text: str) -> Iterator[WorklistItem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TransferError(f"not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise TransferError("JSON must be a list of DICOM JSON data sets")
    for number, dataset in enumerate(data, 1):
        try:
            yield from items_from_dataset(dataset, f"item {number}")
        except ItemError as exc:
            raise TransferError(str(exc)) from None


def iter_csv_items(lines: Iterable[str]) -> Iterator[WorklistItem]:
    reader = csv.DictReader(_without_bom(lines))
    header = reader.fieldnames or []
    if not header:
        raise TransferError("CSV is empty: the first line must name the columns "
                            f"(e.g. {', '.join(CSV_COLUMNS[:3])})")
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        raise TransferError(f"unknown CSV column(s): {', '.join(unknown)} (known: "
                            f"{', '.join(CSV_COLUMNS)})")
    for row in reader:
        top, sps = {}, {}
        if None in row:
            raise TransferError(f"line {reader.line_num}: more values than columns")
        for keyword, value in row.items():
            tag, elem = element(keyword, (value or "").strip())
            (sps if keyword in SPS_ITEM else top)[tag] = elem
        top[SPS_TAG] = {"vr": "SQ", "Value": [sps]}
        try:
            yield from items_from_dataset(top, f"line {reader.line_num}")
        except ItemError as exc:
            raise TransferError(str(exc)) from None


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    first = True
    for line in lines:
        yield line.lstrip("\ufeff") if first else line
        first = False


def describe(row: StoredItem) -> str:
    """One line of `appliance worklist list`."""
    sps = row.item.sps
    return (f"{row.id:>6}  {row.status:<12} {row.item.value('PatientID'):<12} "
            f"{row.item.value('PatientName'):<24} {row.item.value('AccessionNumber'):<12} "
            f"{json_text(sps.get(tag_of('Modality'))):<4} "
            f"{json_text(sps.get(tag_of('ScheduledProcedureStepStartDate')))} "
            f"{json_text(sps.get(tag_of('ScheduledProcedureStepStartTime'))):<6} "
            f"{json_text(sps.get(tag_of('ScheduledStationAETitle'))) or '-':<16} {row.source}")
