"""Type 1 return keys an item came without: a Study Instance UID, a Requested Procedure ID and a
Scheduled Procedure Step ID are generated when the item is created and stay the same across
queries, re-imports, upstream polls and restarts; rows stored before this get theirs once, and
a row stored with a date older firmware let through does not break queries."""

from __future__ import annotations

import json

from appliance.config.schema import ApplianceConfig
from appliance.worklist.item import items_from_dataset
from appliance.worklist.scp import WorklistService
from appliance.worklist.store import WorklistStore
from tests.config.test_config_files import appliance_cli
from tests.worklist.conftest import findscu, item

CSV = ("PatientID,PatientName,AccessionNumber,Modality,ScheduledStationAETitle,"
       "ScheduledProcedureStepStartDate,ScheduledProcedureStepStartTime,"
       "RequestedProcedureDescription\n"
       "G1,GEN^ONE,,CT,CT1,20260115,0900,CT HEAD\n")
KEYS = ("PatientID=G1", "StudyInstanceUID", "RequestedProcedureID",
        "RequestedProcedureDescription",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID")


def identifiers(port: int) -> tuple[str, str, str, str]:
    result = findscu(port, *KEYS)
    assert result.returncode == 0, result.log
    [answer] = result.answers
    return (str(answer.StudyInstanceUID), str(answer.RequestedProcedureID),
            str(answer.RequestedProcedureDescription),
            str(answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID))


def test_findscu_gets_a_stable_generated_study_instance_uid(appliance, tmp_path):
    sections = {"worklist": {"expire_after_hours": 0.0}}  # the item is dated January 2026
    proc, port, config_path = appliance(sections)
    (tmp_path / "items.csv").write_text(CSV)
    imported = appliance_cli("worklist", "import", "items.csv", "--config", str(config_path),
                             cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    first = identifiers(port)
    study, rp_id, description, sps_id = first
    assert study.startswith("2.25.") and len(study) <= 64
    assert rp_id and sps_id and rp_id == sps_id and description == "CT HEAD"
    assert identifiers(port) == first
    again = appliance_cli("worklist", "import", "items.csv", "--config", str(config_path),
                          cwd=tmp_path)
    assert "0 created, 1 updated" in again.stdout  # the same row is the same item
    assert identifiers(port) == first
    proc.stop()
    _, port, _ = appliance(sections)  # a restart on the same data directory
    assert identifiers(port) == first


def test_upstream_polls_keep_the_generated_uid(tmp_path):
    store = WorklistStore.in_data_dir(tmp_path)
    ris = item("U1", "UP^ONE", "UACC1", "CT", "CT1", "20260115", "0900", sps_id="US1")

    def poll() -> str:
        store.replace_source(items_from_dataset(json.loads(json.dumps(ris))), "upstream:ris")
        [row] = store.select()
        return row.item.value("StudyInstanceUID")

    first = poll()
    assert first.startswith("2.25.") and poll() == first


def test_rows_stored_without_a_study_uid_get_one_once(tmp_path):
    config = ApplianceConfig.model_validate({"device": {"data_dir": str(tmp_path)}})
    store = WorklistService(config).store
    store.put(items_from_dataset(item("L1", "OLD^ROW", "LACC1", "CT", "CT1", "20260115",
                                      "0900", study="1.2.3.4", rp_id="LRP1")), "import")
    # as a database written before identifiers were generated holds it
    [row] = store.select()
    data = row.item.data
    del data["0020000D"], data["00401001"]
    store.db.connection().execute(
        "UPDATE worklist_items SET item_json=?, study_instance_uid='', "
        "requested_procedure_id='' WHERE id=?", (json.dumps(data), row.id))
    store.db.connection().commit()

    [first] = WorklistStore.in_data_dir(tmp_path).select()
    study = first.item.value("StudyInstanceUID")
    assert study.startswith("2.25.")
    assert first.item.value("RequestedProcedureID") == "LACC1"
    [again] = WorklistStore.in_data_dir(tmp_path).select()
    assert again.item.value("StudyInstanceUID") == study
    assert WorklistStore.in_data_dir(tmp_path).count("study_instance_uid = ?", (study,)) == 1


def test_a_row_stored_with_a_date_older_firmware_let_through_does_not_break_queries(
        tmp_path, worklist_server):
    port, service = worklist_server()
    [row] = service.store.select("patient_id = '1001'")
    data = row.item.data
    data["00400100"]["Value"][0]["00400002"]["Value"] = ["03122026"]  # as '03.12.2026' was
    service.store.db.connection().execute(
        "UPDATE worklist_items SET item_json=? WHERE id=?", (json.dumps(data), row.id))
    service.store.db.connection().commit()
    result = findscu(port, "PatientID",
                     "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate="
                     "20260101-20261231",
                     "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime=0000-2359")
    assert result.returncode == 0, result.log
    assert "1001" not in {str(a.PatientID) for a in result.answers}
    assert len(result.answers) == 5
