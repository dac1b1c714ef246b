"""The instances a destination has not taken (tried and still pending, or failed) as people
read them on the queue page and in `appliance queue NAME --instances`: patient and study from
the index, the study's date, description and accession number from the file's header (read
only for the rows shown), the SOP Instance UID, attempts and the error that instance got."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from appliance.store.queue import StuckInstance

log = logging.getLogger(__name__)

HEADER_TAGS = ["StudyDate", "StudyDescription", "AccessionNumber"]
PAGE_SIZE = 100  # rows shown (and headers read) at most per page


@dataclass(frozen=True)
class StuckRow:
    sop_instance_uid: str
    state: str           # 'pending' (tried, waits for its next try) or 'failed'
    isolated: bool       # sent alone: the destination aborted or timed out on it
    attempts: int
    next_attempt: float  # epoch seconds (pending rows)
    enqueued_at: float
    error: str
    patient_id: str
    patient_name: str
    study_uid: str
    study_date: str = ""         # YYYY-MM-DD, from the header
    study_description: str = ""
    accession_number: str = ""

    @property
    def study(self) -> str:
        """The study in a few words: date, description, accession (what is known)."""
        parts = [self.study_date, self.study_description]
        if self.accession_number:
            parts.append(f"acc. {self.accession_number}")
        return " ".join(p for p in parts if p) or self.study_uid

    def as_dict(self) -> dict:
        return {**asdict(self), "study": self.study}


def describe(items: list[StuckInstance], instances_dir: Path) -> list[StuckRow]:
    return [_row(item, instances_dir) for item in items[:PAGE_SIZE]]


def _row(item: StuckInstance, instances_dir: Path) -> StuckRow:
    header = _header(instances_dir / item.path)
    date = header.get("StudyDate", "")
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return StuckRow(item.sop_instance_uid, item.state, item.isolated, item.attempts,
                    item.next_attempt, item.enqueued_at, item.error, item.patient_id,
                    item.patient_name.replace("^", " ").strip(), item.study_uid, date,
                    header.get("StudyDescription", ""), header.get("AccessionNumber", ""))


def _header(path: Path) -> dict[str, str]:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        log.debug("no header of %s for the queue page: %s", path, exc)
        return {}
    return {tag: str(ds.get(tag, "") or "") for tag in HEADER_TAGS}
