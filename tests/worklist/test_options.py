"""Worklist SCP options and the C-FIND protocol around the matches: case-insensitive names,
the per-calling-AE station filter, the answer limit, pending responses and C-CANCEL."""

from __future__ import annotations

import threading
import time

from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind

from tests.worklist.conftest import findscu, item


def ids(result) -> list[str]:
    assert result.returncode == 0, result.log
    return sorted(str(a.PatientID) for a in result.answers)


def many(count: int) -> list[dict]:
    return [item(f"P{n:05d}", f"PATIENT^{n:05d}", f"ACC{n:05d}", "CT", "CT1", "20260115",
                 f"{8 + n % 10:02d}0000") for n in range(count)]


def test_person_names_match_case_sensitively_by_default(worklist_server):
    port, _ = worklist_server()
    assert ids(findscu(port, "PatientName=DOE*", "PatientID")) == ["1001", "1002"]
    assert ids(findscu(port, "PatientName=doe^john", "PatientID")) == ["1005"]


def test_case_insensitive_names_option(worklist_server):
    port, _ = worklist_server({"case_insensitive_names": True})
    assert ids(findscu(port, "PatientName=DOE*", "PatientID")) == ["1001", "1002", "1005"]
    assert ids(findscu(port, "PatientName=doe^john", "PatientID")) == ["1001", "1005"]
    assert ids(findscu(port, "SpecificCharacterSet=ISO_IR 192", "PatientName=müller*",
                       "PatientID")) == ["1003"]
    # only person names: other keys stay exact
    assert ids(findscu(port, "AccessionNumber=a1001", "PatientID")) == []


def test_own_station_only_calling_aets_see_only_their_items(worklist_server):
    port, _ = worklist_server({"own_station_only_aets": ["CT1"]})
    assert ids(findscu(port, "PatientID", calling="CT1")) == ["1001", "1003"]
    # even when asking for another station explicitly
    assert ids(findscu(port, "PatientID", "ScheduledProcedureStepSequence[0]."
                       "ScheduledStationAETitle=MR1", calling="CT1")) == []
    # AEs not listed see everyone's items
    assert len(ids(findscu(port, "PatientID", calling="MR1"))) == 6


def test_max_answers_limits_the_matches_sent(worklist_server):
    port, _ = worklist_server({"max_answers": 3}, items=many(10))
    result = findscu(port, "PatientID", extra=("-v",))
    assert len(ids(result)) == 3
    assert "Received Final Find Response (Success)" in result.log


def test_each_match_is_its_own_pending_response(worklist_server):
    port, _ = worklist_server(items=many(25))
    result = findscu(port, "PatientID", extra=("-v",))
    assert len(result.answers) == 25
    assert result.log.count("Received Find Response") == 25
    assert "Received Final Find Response (Success)" in result.log


def test_c_cancel_stops_the_answers(worklist_server):
    # enough matches that the answers cannot all be sent before the C-CANCEL arrives
    port, _ = worklist_server(items=many(3000))
    result = findscu(port, "PatientID", extra=("-v", "--cancel", "2"))
    assert result.returncode == 0, result.log
    assert "Sending Cancel Request" in result.log
    assert "Received Final Find Response (Cancel" in result.log, result.log
    # Honoured promptly: the search runs only a few answers ahead of the network.
    assert len(result.answers) < 200


def test_pending_answers_are_streamed_before_the_search_ends(worklist_server):
    # The first answer must reach the SCU while later ones are still being produced: read
    # the first response, note the time, and check the rest keep arriving after it.
    port, _ = worklist_server(items=many(300))
    ae = AE(ae_title="STREAM")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    assert assoc.is_established
    query = Dataset()
    query.PatientID = ""
    arrivals = []
    for status, _identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
        arrivals.append((time.monotonic(), status.Status))
    assoc.release()
    assert [s for _, s in arrivals].count(0xFF00) == 300
    assert arrivals[-1][1] == 0x0000
    assert arrivals[-1][0] > arrivals[0][0]


def test_queries_on_parallel_associations(worklist_server):
    port, _ = worklist_server()
    results = [None] * 4

    def run(index):
        results[index] = ids(findscu(port, "PatientID", calling=f"SCU{index}"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None and len(r) == 6 for r in results)


def test_disabled_worklist_refuses_queries(worklist_server):
    port, _ = worklist_server({"enabled": False})
    result = findscu(port, "PatientID", extra=("-v",))
    assert result.answers == []
    assert "Failed: UnableToProcess" in result.log, result.log  # 0xC000


def test_options_apply_live_on_reconfigure(worklist_server, tmp_path):
    from appliance.config.schema import ApplianceConfig
    from appliance.core.events import EventBus
    from appliance.worklist.lifecycle import WorklistLifecycle

    port, service = worklist_server({"expire_after_hours": 0.0})
    lifecycle = WorklistLifecycle(ApplianceConfig.model_validate({
        "device": {"data_dir": service._data_dir}, "worklist": {"expire_after_hours": 0.0}}),
        EventBus(), service)
    assert len(ids(findscu(port, "PatientID"))) == 6
    lifecycle.reconfigure(ApplianceConfig.model_validate({
        "device": {"data_dir": service._data_dir},
        "worklist": {"expire_after_hours": 0.0, "max_answers": 2,
                     "case_insensitive_names": True}}))
    assert len(ids(findscu(port, "PatientID"))) == 2
    assert ids(findscu(port, "PatientName=doe^john", "PatientID")) == ["1001", "1005"]
