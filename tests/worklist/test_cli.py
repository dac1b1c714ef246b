"""`appliance worklist import|export|list|delete`: JSON in the DICOM JSON model (as pydicom's
Dataset.to_json_dict() writes it) and CSV, round trips, clear refusals, nothing half-imported."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from pydicom import Dataset

from tests.conftest import write_config
from tests.worklist.conftest import ITEMS


def pydicom_item(pid: str, name: str, accession: str, modality: str = "CT") -> dict:
    ds = Dataset()
    ds.PatientID = pid
    ds.PatientName = name
    ds.AccessionNumber = accession
    ds.StudyInstanceUID = f"1.2.40.{int.from_bytes(pid.encode(), 'big')}"
    ds.RequestedProcedureDescription = "CT HEAD"
    sps = Dataset()
    sps.Modality = modality
    sps.ScheduledStationAETitle = "CT1"
    sps.ScheduledProcedureStepStartDate = "20260301"
    sps.ScheduledProcedureStepStartTime = "081500"
    ds.ScheduledProcedureStepSequence = [sps]
    return ds.to_json_dict()


@pytest.fixture
def cli(tmp_path):
    config = write_config(tmp_path / "appliance.toml",
                          {"device": {"data_dir": str(tmp_path / "data")}})

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
        return subprocess.run([sys.executable, "-m", "appliance", "worklist", *args,
                               "--config", str(config)], capture_output=True, text=True,
                              cwd=tmp_path, env=env, input=stdin, timeout=60)
    return run


def test_import_pydicom_json_then_list_and_export(cli, tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps([pydicom_item("P1", "ÅSTRÖM^EVA", "X1"),
                                pydicom_item("P2", "BAKER^BOB", "X2", "MR")]))
    result = cli("import", str(path))
    assert result.returncode == 0, result.stderr
    assert "2 created, 0 updated" in result.stdout
    listed = cli("list")
    assert listed.returncode == 0
    assert "ÅSTRÖM^EVA" in listed.stdout and "BAKER^BOB" in listed.stdout
    exported = json.loads(cli("export", "--format", "json").stdout)
    assert len(exported) == 2
    back = Dataset.from_json(exported[0])
    assert back.PatientName == "ÅSTRÖM^EVA"
    assert back.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "081500"


def test_json_round_trip_into_a_fresh_box_is_identical(cli, tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps(ITEMS, ensure_ascii=False))
    assert cli("import", str(path)).returncode == 0
    first = cli("export", str(tmp_path / "out.json"))
    assert first.returncode == 0, first.stderr
    assert cli("delete", "--all").returncode == 0
    assert cli("list").stdout == ""
    assert cli("import", str(tmp_path / "out.json")).returncode == 0
    assert json.loads(cli("export").stdout) == json.loads((tmp_path / "out.json").read_text())


def test_reimport_updates_instead_of_duplicating(cli, tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps([pydicom_item("P1", "A^B", "X1")]))
    cli("import", str(path))
    path.write_text(json.dumps([pydicom_item("P1", "A^CHANGED", "X1")]))
    result = cli("import", str(path))
    assert "0 created, 1 updated" in result.stdout
    assert "A^CHANGED" in cli("list").stdout


def test_csv_import_and_export(cli, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("PatientID,PatientName,AccessionNumber,Modality,ScheduledStationAETitle,"
                    "ScheduledProcedureStepStartDate,ScheduledProcedureStepStartTime,"
                    "RequestedProcedureDescription\n"
                    "C1,MÜLLER^HANS,CA1,CT,CT1,20260301,0800,CT HEAD\n"
                    "C2,SMITH^JO,CA2,MR,MR1,20260302,,MR KNEE\n", encoding="utf-8")
    result = cli("import", str(path))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(cli("export", "--format", "csv").stdout)))
    assert [(r["PatientID"], r["PatientName"], r["Modality"], r["ScheduledProcedureStepStartTime"])
            for r in rows] == [("C1", "MÜLLER^HANS", "CT", "0800"), ("C2", "SMITH^JO", "MR", "")]
    exported = json.loads(cli("export").stdout)
    assert Dataset.from_json(exported[0]).ScheduledProcedureStepSequence[0].Modality == "CT"


def test_delete_by_id_and_accession(cli, tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps(ITEMS, ensure_ascii=False))
    cli("import", str(path))
    first_id = cli("list").stdout.split()[0]
    assert cli("delete", first_id).stdout.strip() == "1 items deleted"
    assert cli("delete", "--accession", "A1002").stdout.strip() == "1 items deleted"
    assert cli("delete", "--patient-id", "1003").stdout.strip() == "1 items deleted"
    missing = cli("delete", "--accession", "NOPE")
    assert missing.returncode == 1 and "0 items deleted" in missing.stdout
    assert cli("delete").returncode == 2
    assert len(cli("list").stdout.splitlines()) == 3


@pytest.mark.parametrize("name, text, message", [
    ("bad.json", "[{]", "not valid JSON"),
    ("nopid.json", json.dumps([pydicom_item("P1", "A^B", "X1"),
                               {k: v for k, v in pydicom_item("P2", "C^D", "X2").items()
                                if k != "00100020"}]),
     "item 2: PatientID (0010,0020) is required"),
    ("nosps.json", json.dumps([{"00100020": {"vr": "LO", "Value": ["P9"]}}]),
     "item 1: ScheduledProcedureStepSequence (0040,0100) with at least one item is required"),
    ("baddate.csv", "PatientID,Modality,ScheduledProcedureStepStartDate\nP1,CT,2026-3-1\n",
     "line 2: ScheduledProcedureStepStartDate (0040,0002): '2026-3-1' is not a DICOM date"),
    ("col.csv", "PatientID,Modalty\nP1,CT\n", "unknown CSV column(s): Modalty"),
    ("badtag.json", json.dumps([{"zzzz": {"vr": "LO"}}]), "not a valid DICOM JSON data set"),
])
def test_bad_file_is_refused_whole_with_the_reason(cli, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    result = cli("import", str(path))
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert cli("list").stdout == ""  # nothing imported, not even the good first item


def test_unknown_format_and_missing_file(cli, tmp_path):
    (tmp_path / "items.txt").write_text("x")
    result = cli("import", str(tmp_path / "items.txt"))
    assert result.returncode == 2 and "give --format json or csv" in result.stderr
    result = cli("import", str(tmp_path / "nope.json"))
    assert result.returncode == 1 and "No such file" in result.stderr


def test_import_from_stdin(cli):
    result = cli("import", "-", "--format", "json",
                 stdin=json.dumps([pydicom_item("P7", "S^T", "X7")]))
    assert result.returncode == 0, result.stderr
    assert "P7" in cli("list").stdout


def test_web_provider_api(tmp_path):
    from appliance.config.schema import ApplianceConfig
    from appliance.core.providers import WorklistProvider
    from appliance.worklist.scp import WorklistService
    from appliance.worklist.transfer import TransferError
    from appliance.worklist.web_provider import WorklistWebProvider

    config = ApplianceConfig.model_validate({"device": {"data_dir": str(tmp_path / "d")}})
    provider = WorklistWebProvider(WorklistService(config))
    assert isinstance(provider, WorklistProvider)
    item_id = provider.add({"PatientID": "W1", "PatientName": "WEB^ONE", "Modality": "CT",
                            "ScheduledProcedureStepStartDate": "20260301",
                            "RequestedProcedureDescription": "CT HEAD"})["id"]
    assert provider.import_file(json.dumps([pydicom_item("P1", "A^B", "X1")]).encode(),
                                "json") == {"imported": 1, "notes": []}
    assert provider.counts() == {"SCHEDULED": 2}
    assert [(s.name, s.items) for s in provider.sources()] == [("web", 2)]
    listed = provider.items()
    assert {i["PatientID"] for i in listed} == {"W1", "P1"}
    with pytest.raises(TransferError, match="PatientID"):
        provider.add({"Modality": "CT", "ScheduledProcedureStepStartDate": "20260301"})
    with pytest.raises(TransferError, match="unknown attribute"):
        provider.add({"Patient": "x"})
    assert provider.delete(item_id) and not provider.delete(item_id)
    assert not provider.delete("junk")


def test_cli_choices_match_the_store():
    from appliance.worklist import cli_commands, store, transfer

    assert cli_commands.STATUSES == store.STATUSES
    assert cli_commands.FORMATS == transfer.FORMATS
