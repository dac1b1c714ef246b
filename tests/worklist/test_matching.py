"""Modality Worklist C-FIND matching, queried by DCMTK `findscu -W` over a real socket: each
matching kind of PS3.4 C.2.2.2, sequence matching, the combined SPS date-time range, stored
empty values, requested-keys-only answers and character sets."""

from __future__ import annotations

import pytest

from tests.worklist.conftest import findscu

SPS = "ScheduledProcedureStepSequence[0]."


def ids(result) -> list[str]:
    assert result.returncode == 0, result.log
    return sorted(str(a.PatientID) for a in result.answers)


def test_single_value_patient_id(mwl):
    assert ids(findscu(mwl, "PatientID=1002")) == ["1002"]


def test_single_value_is_exact_not_prefix(mwl):
    assert ids(findscu(mwl, "PatientID=100")) == []
    assert ids(findscu(mwl, "AccessionNumber=A1003", "PatientID")) == ["1003"]


def test_universal_matching_returns_every_scheduled_item(mwl):
    assert ids(findscu(mwl, "PatientID", "PatientName")) == ["1001", "1002", "1003", "1004",
                                                            "1005", "1006"]


@pytest.mark.parametrize("pattern, expected", [
    ("DOE*", ["1001", "1002"]),             # case-sensitive by default: not doe^john
    ("DOE^J?HN", ["1001"]),
    ("*^J*", ["1001", "1002", "1003"]),
    ("*", ["1001", "1002", "1003", "1004", "1005", "1006"]),  # '*' alone is universal
])
def test_wildcard_patient_name(mwl, pattern, expected):
    assert ids(findscu(mwl, f"PatientName={pattern}", "PatientID")) == expected


def test_date_range_on_sps_start_date(mwl):
    result = findscu(mwl, "PatientID", f"{SPS}ScheduledProcedureStepStartDate=20260116-")
    assert ids(result) == ["1003", "1004", "1005", "1006"]
    result = findscu(mwl, "PatientID", f"{SPS}ScheduledProcedureStepStartDate=-20260115")
    assert ids(result) == ["1001", "1002"]
    result = findscu(mwl, "PatientID", f"{SPS}ScheduledProcedureStepStartDate=20260116")
    assert ids(result) == ["1003", "1004"]


def test_sps_date_and_time_match_as_one_combined_range(mwl):
    # 15 Jan 12:00 to 16 Jan 10:00: matching date and time separately would find nothing
    # (12:00-10:00 is an empty time range) or everything on both days.
    result = findscu(mwl, "PatientID", f"{SPS}ScheduledProcedureStepStartDate=20260115-20260116",
                     f"{SPS}ScheduledProcedureStepStartTime=1200-1000")
    assert ids(result) == ["1002", "1003"]


def test_time_range_alone(mwl):
    result = findscu(mwl, "PatientID", f"{SPS}ScheduledProcedureStepStartTime=0900-1100")
    assert ids(result) == ["1001", "1006"]


def test_list_of_uids(mwl):
    result = findscu(mwl, "PatientID", "StudyInstanceUID=1.2.3.1\\1.2.3.4\\9.9.9")
    assert ids(result) == ["1001", "1004"]


def test_sequence_matching_all_keys_of_the_item_must_match(mwl):
    result = findscu(mwl, "PatientID", f"{SPS}Modality=CT", f"{SPS}ScheduledStationAETitle=CT1")
    assert ids(result) == ["1001", "1003"]
    result = findscu(mwl, "PatientID", f"{SPS}Modality=CT",
                     f"{SPS}ScheduledPerformingPhysicianName=SMITH*")
    assert ids(result) == ["1001", "1003"]


def test_zero_length_sequence_item_matches_everything_and_returns_the_whole_item(mwl):
    result = findscu(mwl, "PatientID=1001", "ScheduledProcedureStepSequence[0]")
    assert ids(result) == ["1001"]
    step = result.answers[0].ScheduledProcedureStepSequence[0]
    assert step.Modality == "CT" and step.ScheduledStationAETitle == "CT1"


def test_stored_empty_value_matches_only_universal(mwl):
    # 1006 has no accession number, 1005 no performing physician.
    assert ids(findscu(mwl, "PatientID", "AccessionNumber=A*")) == ["1001", "1002", "1003",
                                                                    "1004", "1005"]
    assert "1006" in ids(findscu(mwl, "PatientID", "AccessionNumber"))
    assert "1005" not in ids(findscu(mwl, "PatientID",
                                     f"{SPS}ScheduledPerformingPhysicianName=*S*"))
    assert "1005" in ids(findscu(mwl, "PatientID", f"{SPS}ScheduledPerformingPhysicianName"))
    assert ids(findscu(mwl, "PatientID", f"{SPS}ScheduledStationAETitle=?*")) == [
        "1001", "1002", "1003", "1004", "1005"]


def test_only_requested_attributes_come_back(mwl):
    result = findscu(mwl, "PatientID=1001", "PatientName", f"{SPS}Modality",
                     "PatientComments", f"{SPS}ScheduledProcedureStepLocation")
    assert result.returncode == 0, result.log
    [answer] = result.answers
    assert {e.keyword for e in answer} == {"PatientID", "PatientName", "PatientComments",
                                           "ScheduledProcedureStepSequence"}
    assert answer.PatientName == "DOE^JOHN"
    assert answer.PatientComments == ""  # unknown to us: returned empty
    step = answer.ScheduledProcedureStepSequence[0]
    assert {e.keyword for e in step} == {"Modality", "ScheduledProcedureStepLocation"}
    assert step.Modality == "CT" and step.ScheduledProcedureStepLocation == ""


def test_latin1_query_and_answer(mwl):
    result = findscu(mwl, "SpecificCharacterSet=ISO_IR 100",
                     "PatientName=MÜLLER*".encode("latin-1"), "PatientID")
    assert ids(result) == ["1003"]
    answer = result.answers[0]
    assert answer.SpecificCharacterSet == "ISO_IR 100"
    assert str(answer.PatientName) == "MÜLLER^JÜRGEN"


def test_utf8_query_and_answer(mwl):
    result = findscu(mwl, "SpecificCharacterSet=ISO_IR 192", "PatientName=李*".encode(),
                     "PatientID")
    assert ids(result) == ["1004"]
    assert result.answers[0].SpecificCharacterSet == "ISO_IR 192"
    assert str(result.answers[0].PatientName) == "李^华"


def test_answer_needing_more_than_the_query_charset_is_sent_in_utf8(mwl):
    result = findscu(mwl, "SpecificCharacterSet=ISO_IR 100", "PatientID=1004", "PatientName")
    assert result.answers[0].SpecificCharacterSet == "ISO_IR 192"
    assert str(result.answers[0].PatientName) == "李^华"
    plain = findscu(mwl, "PatientID=1001", "PatientName")
    assert "SpecificCharacterSet" not in plain.answers[0]  # ASCII: default repertoire


def test_malformed_date_is_refused_with_a900(mwl):
    result = findscu(mwl, "PatientID", f"{SPS}ScheduledProcedureStepStartDate=2026-01-xx",
                     extra=("-v",))
    assert result.answers == []
    assert "Error: DataSetDoesNotMatchSOPClass" in result.log, result.log  # 0xA900


def two_stations() -> list[dict]:
    """An item for two stations (Scheduled Station AE Title and Name are VM 1-n) and one for
    a third."""
    from tests.worklist.conftest import item

    both = item("2001", "TWO^STATIONS", "A2001", "CT", "CT1", "20260115", "093000",
                study="1.2.3.21", sps_id="S21")
    step = both["00400100"]["Value"][0]
    step["00400001"] = {"vr": "AE", "Value": ["CT1", "CT2"]}
    step["00400010"] = {"vr": "SH", "Value": ["ROOM1", "ROOM2"]}
    other = item("2002", "ONE^STATION", "A2002", "CT", "CT3", "20260115", "100000",
                 study="1.2.3.22", sps_id="S22")
    return [both, other]


@pytest.mark.parametrize("key, expected", [
    (f"{SPS}ScheduledStationAETitle=CT2", ["2001"]),
    (f"{SPS}ScheduledStationAETitle=CT1", ["2001"]),
    (f"{SPS}ScheduledStationAETitle=CT3", ["2002"]),
    (f"{SPS}ScheduledStationAETitle=CT?", ["2001", "2002"]),
    (f"{SPS}ScheduledStationName=ROOM2", ["2001"]),
    (f"{SPS}ScheduledStationAETitle=CT1\\CT2", []),  # not a list for an AE: one value
])
def test_a_value_stored_with_several_values_matches_when_any_one_does(worklist_server, key,
                                                                        expected):
    port, _ = worklist_server(items=two_stations())
    assert ids(findscu(port, "PatientID", key)) == expected


def test_the_station_filter_finds_an_item_for_several_stations(worklist_server):
    port, _ = worklist_server({"own_station_only_aets": ["CT2", "CT3"]}, items=two_stations())
    assert ids(findscu(port, "PatientID", calling="CT2")) == ["2001"]
    assert ids(findscu(port, "PatientID", calling="CT3")) == ["2002"]


def test_rows_stored_before_the_upgrade_are_marked_by_the_migration(tmp_path):
    """A database written by the firmware before (worklist migrations 1-2) gets its rows with
    several values marked, so they are found after the upgrade."""
    from appliance.store.database import Database
    from appliance.worklist.item import items_from_dataset
    from appliance.worklist.matcher import WorklistQuery
    from appliance.worklist.store import COLUMNS, MIGRATIONS, WorklistStore

    db = Database.in_data_dir(tmp_path)
    db.migrate(MIGRATIONS[:2])
    with db.transaction() as tx:
        for number, stored in enumerate(items_from_dataset(d)[0] for d in two_stations()):
            cols = stored.columns()
            tx.execute(f"INSERT INTO worklist_items (item_key, source, {', '.join(COLUMNS)}, "
                       f"item_json, created_at, updated_at) VALUES (?, 'old', "
                       f"{', '.join('?' for _ in COLUMNS)}, ?, 0, 0)",
                       (f"k{number}", *[cols[c] for c in COLUMNS], stored.to_json()))
    store = WorklistStore(db)
    query = WorklistQuery({"00400100": {"vr": "SQ", "Value": [
        {"00400001": {"vr": "AE", "Value": ["CT2"]}}]}, "00100020": {"vr": "LO"}})
    where, params = query.sql()
    found = [item for item, _ in store.scan_items(where, params) if query.matches(item)]
    assert [item["00100020"]["Value"] for item in found] == [["2001"]]
