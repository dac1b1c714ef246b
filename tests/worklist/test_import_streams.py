"""A worklist import streams: its items are read, checked and stored one at a time, so the
memory it takes does not grow with the number of items, and it stays all or nothing (a bad
last line leaves nothing stored). The web page's upload: tests/web/test_worklist_forms.py."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from appliance.worklist.store import WorklistStore
from appliance.worklist.transfer import MAX_NOTES, TransferError, WorklistAdmin

EXAMPLE_CSV = Path(__file__).resolve().parents[2] / "docs" / "examples" / "worklist.csv"


def csv_text(items: int, last_line: str | None = None, loose_dates: bool = False) -> str:
    header, row = EXAMPLE_CSV.read_text().splitlines()[:2]
    if loose_dates:
        row = row.replace(",20991231,", ",2099-12-31,")
    lines = [header]
    for n in range(items):
        lines.append(row.replace("A20991001", f"A{n:09d}").replace("SPS1001", f"S{n}"))
    if last_line is not None:
        lines.append(last_line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def admin(tmp_path):
    return WorklistAdmin(WorklistStore.in_data_dir(tmp_path))


def peak_bytes_of(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_items(admin, tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text(csv_text(200))
    large.write_text(csv_text(3000))

    def import_file(path: Path):
        with open(path, newline="") as stream:
            return admin.import_stream(stream, "csv")

    peak_small = peak_bytes_of(lambda: import_file(small))
    peak_large = peak_bytes_of(lambda: import_file(large))
    # Loading 3000 items at once took ~8 KB each (about 24 MB); streamed, the peak is that of a
    # few items, whatever their number.
    assert peak_large < peak_small + 2_000_000, (peak_small, peak_large)
    assert admin.store.count() == 3000


def test_a_bad_last_line_leaves_nothing_stored(admin):
    text = csv_text(500, last_line="X1,DOE^X,,,A-BAD,,,CT HEAD,CT,CT3,03.12.2026,080000,S-BAD,D")
    with pytest.raises(TransferError, match="line 502: ScheduledProcedureStepStartDate"):
        admin.import_stream(io.StringIO(text), "csv")
    assert admin.store.count() == 0


def test_notes_are_capped_and_counted(admin):
    result = admin.import_stream(io.StringIO(csv_text(MAX_NOTES + 30, loose_dates=True)), "csv")
    assert result.created == MAX_NOTES + 30
    assert len(result.notes) == MAX_NOTES
    more = MAX_NOTES + 30 - 20
    assert f"... and {more} more value(s) stored in DICOM form" in result.details(limit=20)


def test_a_file_that_is_not_utf8_is_refused_whole(admin):
    latin1 = "Z9,M\xdcLLER^A,,,A-Z9,,,CT,CT,CT3,20991231,080000,S-Z9,D\n".encode("latin-1")
    raw = csv_text(50).encode() + latin1
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="")
    with pytest.raises(TransferError, match="UTF-8"):
        admin.import_stream(text, "csv")
    assert admin.store.count() == 0
