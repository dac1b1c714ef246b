"""The worklist as the web page sees it (`appliance.core.providers.WorklistProvider`): counts,
feeder sources, a list of items, add one, import a file, delete one; all over `WorklistAdmin`,
the same API as `appliance worklist ...`."""

from __future__ import annotations

import io
import logging
from typing import BinaryIO

from appliance.core.providers import WorklistSource
from appliance.worklist.item import ItemError, element, items_from_dataset
from appliance.worklist.keys import SPS_ITEM
from appliance.worklist.scp import WorklistService
from appliance.worklist.transfer import CSV_COLUMNS, FORMATS, TransferError, WorklistAdmin

log = logging.getLogger(__name__)

LISTED = ("PatientID", "PatientName", "AccessionNumber", "Modality",
          "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
          "ScheduledStationAETitle", "ScheduledProcedureStepDescription")
#: Notes on normalised values an import answer lists (a page message stays readable).
NOTES_SHOWN = 20
#: Generated identifiers the answer to "add an item" names.
GENERATED_NOTED = ("StudyInstanceUID", "RequestedProcedureID", "ScheduledProcedureStepID")


class WorklistWebProvider:
    """WorklistProvider over the MWL service's store. Errors are TransferError (a ValueError)
    with a sentence for the page."""

    def __init__(self, service: WorklistService):
        self.service = service

    @property
    def admin(self) -> WorklistAdmin:
        return WorklistAdmin(self.service.store)

    def counts(self) -> dict[str, int]:
        return self.service.store.counts()

    def completed_since(self, since: float) -> int:
        """Items that became COMPLETED (an MPPS or an HL7 order said so) since `since`."""
        return self.service.store.completed_since(since)

    def sources(self) -> list[WorklistSource]:
        return [WorklistSource(name, count, last)
                for name, count, last in self.service.store.scheduled_by_source()]

    def items(self, limit: int = 200) -> list[dict]:
        out = []
        # scheduled, and started by an MPPS (IN PROGRESS): the items not yet done
        for row in self.service.store.select("status IN ('SCHEDULED', 'IN PROGRESS')",
                                             limit=limit):
            entry = {"id": str(row.id), "status": row.status, "source": row.source}
            entry.update({keyword: row.item.value(keyword) for keyword in LISTED})
            out.append(entry)
        return out

    def add(self, item: dict) -> dict:
        """Store one item; {"id", "notes"}: the notes say what was stored other than as
        typed (normalised values, generated identifiers)."""
        unknown = [k for k in item if k not in CSV_COLUMNS]
        if unknown:
            raise TransferError(f"unknown attribute(s): {', '.join(unknown)}")
        top, sps = {}, {}
        for keyword, value in item.items():
            tag, elem = element(keyword, str(value).strip())
            (sps if keyword in SPS_ITEM else top)[tag] = elem
        top["00400100"] = {"vr": "SQ", "Value": [sps]}
        try:
            [parsed] = items_from_dataset(top, "item")
        except ItemError as exc:
            raise TransferError(str(exc)) from None
        self.service.store.put([parsed], "web")
        row = next(self.service.store.select("item_key = ?", (parsed.key,)))
        notes = [note.removeprefix("item: ") for note in parsed.notes]
        notes += [f"{keyword} generated: {row.item.value(keyword)}"
                  for keyword in GENERATED_NOTED if keyword in parsed.generated]
        return {"id": str(row.id), "notes": notes}

    def import_file(self, data: bytes | BinaryIO, fmt: str) -> dict:
        """Import a file (its bytes, or a binary file object read as it goes); {"imported":
        items created or updated, "notes": what was stored other than as written}."""
        if fmt not in FORMATS:
            raise TransferError(f"format must be json or csv, got {fmt!r}")
        raw = io.BytesIO(data) if isinstance(data, bytes) else data
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            result = self.admin.import_stream(text, fmt, source="web")
        finally:
            text.detach()  # the caller owns the file object
        return {"imported": result.created + result.updated,
                "notes": result.details(limit=NOTES_SHOWN)}

    def delete(self, item_id: str) -> bool:
        try:
            number = int(item_id)
        except ValueError:
            return False
        return self.admin.delete(ids=[number]) > 0
