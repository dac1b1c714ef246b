"""One check of worklist values against their VR for every feeder: a bad value refuses the
whole CSV or JSON file (line or item, attribute, reason; nothing stored; exit 1), the web form
and the API (422), an HL7 order (AE naming the field) and an upstream answer (that item only,
with a warning); loose forms a person types are stored in DICOM form and the answer says so."""

from __future__ import annotations

import json
import logging

import pytest

from appliance.worklist.item import ItemError, items_from_dataset
from tests.worklist.test_cli import cli, pydicom_item  # noqa: F401  (the cli fixture)
from tests.worklist.test_hl7 import code, hl7_box, orm, reason, send  # noqa: F401

HEADER = ("PatientID,PatientName,Modality,ScheduledStationAETitle,"
          "ScheduledProcedureStepStartDate,ScheduledProcedureStepStartTime,"
          "RequestedProcedureDescription\n")


def csv_row(date="20261203", time="140000", pid="P1", modality="CT") -> str:
    return f"{pid},DOE^JANE,{modality},CT1,{date},{time},CT HEAD\n"


@pytest.mark.parametrize("vr, value, stored", [
    ("DA", "20261203", "20261203"), ("DA", "2026-12-03", "20261203"),
    ("DA", "20240229", "20240229"), ("TM", "14:00", "1400"), ("TM", "9:05:30", "090530"),
    ("TM", "235960.5", "235960.5"), ("TM", "14", "14"), ("DT", "20261203143000+0100",
                                                          "20261203143000+0100"),
    ("CS", "ct", "CT"), ("AE", "  CT1 ", "CT1"), ("UI", "1.2.840.10008.0", "1.2.840.10008.0"),
    ("PN", "DOE^JANE", "DOE^JANE"), ("LT", "line one\r\nline two\\x", "line one\r\nline two\\x"),
])
def test_valid_and_loose_values_are_stored_in_dicom_form(vr, value, stored):
    from appliance.dicom.values import checked_value

    assert checked_value(vr, value) == stored


@pytest.mark.parametrize("vr, value, reason", [
    ("DA", "03.12.2026", "is not a DICOM date"), ("DA", "20261350", "month must be in 1..12"),
    ("DA", "20250229", "day is out of range"), ("DA", "2026-3-1", "is not a DICOM date"),
    ("TM", "2460", "not a time of day"), ("TM", "1460", "not a time of day"),
    ("TM", "14h00", "is not a DICOM time"), ("DT", "20261301", "month must be in 1..12"),
    ("DT", "20261203250000", "not a time of day"),
    ("PN", "A^B^C^D^E^F", "more than five components"), ("PN", "X" * 65, "at most 64"),
    ("AE", "   ", "may not be all spaces"), ("AE", "A" * 17, "at most 16"),
    ("AE", "CT\x01", "control character"), ("CS", "C-T", "is not a code string"),
    ("CS", "A" * 17, "at most 16"), ("UI", "1.02.3", "no leading zeros"),
    ("UI", "1.2.a", "is not a UID"), ("UI", "1." + "2" * 63, "at most 64"),
    ("SH", "S" * 17, "at most 16"), ("LO", "L" * 65, "at most 64"),
    ("LO", "tab\there", "control character"), ("LO", "a\\b", "backslash"),
    ("CS", "ÄB", "default repertoire"),
])
def test_bad_values_are_refused_with_the_reason(vr, value, reason):
    from appliance.dicom.values import ValueProblem, checked_value

    with pytest.raises(ValueProblem, match=reason):
        checked_value(vr, value)


@pytest.mark.parametrize("date, reason", [
    ("03.12.2026", "'03.12.2026' is not a DICOM date"),
    ("20261350", "'20261350' is not a calendar date (month must be in 1..12)"),
])
def test_csv_with_a_bad_date_is_refused_whole_and_nothing_is_stored(cli, tmp_path,  # noqa: F811
                                                                     date, reason):
    path = tmp_path / "items.csv"
    path.write_text(HEADER + csv_row(pid="GOOD") + csv_row(date=date))
    result = cli("import", str(path))
    assert result.returncode == 1, result.stdout
    assert (f"line 3: ScheduledProcedureStepStartDate (0040,0002): {reason}"
            in result.stderr), result.stderr
    assert "created" not in result.stdout
    assert cli("list", "--all").stdout == ""


@pytest.mark.parametrize("date", ["03.12.2026", "20261350"])
def test_json_with_a_bad_date_is_refused_whole(cli, tmp_path, date):  # noqa: F811
    bad = pydicom_item("P2", "C^D", "X2")
    bad["00400100"]["Value"][0]["00400002"]["Value"] = [date]
    path = tmp_path / "items.json"
    path.write_text(json.dumps([pydicom_item("P1", "A^B", "X1"), bad]))
    result = cli("import", str(path))
    assert result.returncode == 1
    assert f"item 2: ScheduledProcedureStepStartDate (0040,0002): '{date}'" in result.stderr
    assert cli("list", "--all").stdout == ""


def test_loose_date_and_time_are_normalised_and_the_import_says_so(cli, tmp_path):  # noqa: F811
    path = tmp_path / "items.csv"
    path.write_text(HEADER + csv_row(date="2026-12-03", time="14:00", modality="ct"))
    result = cli("import", str(path))
    assert result.returncode == 0, result.stderr
    assert "1 created, 0 updated" in result.stdout
    assert ("line 2: ScheduledProcedureStepStartDate (0040,0002) '2026-12-03' stored as "
            "'20261203'") in result.stdout
    assert "ScheduledProcedureStepStartTime (0040,0003) '14:00' stored as '1400'" \
        in result.stdout
    assert "Modality (0008,0060) 'ct' stored as 'CT'" in result.stdout
    assert "1 item(s) without a StudyInstanceUID were given one" in result.stdout
    step = json.loads(cli("export").stdout)[0]["00400100"]["Value"][0]
    assert step["00400002"]["Value"] == ["20261203"]
    assert step["00400003"]["Value"] == ["1400"]
    assert step["00080060"]["Value"] == ["CT"]


def test_an_item_without_a_description_is_refused():
    data = pydicom_item("P1", "A^B", "X1")
    del data["00321060"]
    with pytest.raises(ItemError, match=r"RequestedProcedureDescription \(0032,1060\) or "
                                        r"ScheduledProcedureStepDescription"):
        items_from_dataset(data)
    data["00400100"]["Value"][0]["00400007"] = {"vr": "LO", "Value": ["CT HEAD PLAIN"]}
    [item] = items_from_dataset(data)  # the step's description stands in for it
    assert item.value("RequestedProcedureDescription") == "CT HEAD PLAIN"


def test_a_value_pydicom_only_warns_about_is_refused_not_stored():
    data = pydicom_item("P1", "A^B", "X1")
    data["00101010"] = {"vr": "AS", "Value": ["42 years"]}  # Patient's Age
    with pytest.raises(ItemError, match=r"PatientAge \(0010,1010\): '42 years' is not an age"):
        items_from_dataset(data)


def test_upstream_item_with_a_bad_value_is_skipped_with_a_warning_and_the_rest_kept(
        tmp_path, caplog, wlmscpfs):
    from datetime import date

    from appliance.config.schema import ApplianceConfig
    from appliance.worklist.scp import WorklistService
    from appliance.worklist.upstream import UpstreamProxy
    from tests.worklist.conftest import item

    today = f"{date.today():%Y%m%d}"
    good = [item(f"R{n}", f"RIS^P{n}", f"RACC{n}", "CT", "CT1", today, "090000",
                 study=f"1.2.3.{n}", sps_id=f"RS{n}") for n in range(2)]
    bad = item("R9", "RIS^BAD", "RACC9", "CT", "CT1", today, "250000", study="1.2.3.9",
               sps_id="RS9")
    with pytest.warns(UserWarning, match="Invalid value for VR TM"):  # writing the RIS's file
        ris_port, _ = wlmscpfs([good[0], bad, good[1]])
    config = ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path / "data")},
        "peers": [{"name": "ris", "ae_title": "RIS", "host": "127.0.0.1", "port": ris_port}],
        "worklist": {"upstream": {"enabled": True, "peer": "ris", "timeout": 5.0}}})
    service = WorklistService(config)
    with caplog.at_level(logging.WARNING, logger="appliance.worklist.upstream"):
        assert UpstreamProxy(config, service).poll() is True
    stored = sorted(row.item.value("AccessionNumber") for row in service.store.select())
    assert stored == ["RACC0", "RACC1"]
    assert ("ScheduledProcedureStepStartTime (0040,0003): '250000' is not a time of day"
            in caplog.text), caplog.text
    assert "skipped" in caplog.text


def test_hl7_order_with_a_bad_date_is_answered_ae_naming_the_field(hl7_box):  # noqa: F811
    listener, port, service = hl7_box()
    [ack] = send(listener, orm(start="20261350093000"))
    assert code(ack) == "AE"
    assert reason(ack).startswith("OBR.27.4 (ScheduledProcedureStepStartDate (0040,0002): "
                                  "'20261350' is not a calendar date"), reason(ack)
    assert service.store.count() == 0
    [ack] = send(listener, orm(start="202612031460"))
    assert code(ack) == "AE" and "'1460' is not a time of day" in reason(ack)
    [ack] = send(listener, orm(station="A_VERY_LONG_STATION_AE"))
    assert code(ack) == "AE" and reason(ack).startswith("OBR.21 (ScheduledStationAETitle")
    assert service.store.count() == 0
    [ack] = send(listener, orm())
    assert code(ack) == "AA"



def test_an_item_without_a_patient_name_is_refused():
    data = pydicom_item("P1", "A^B", "X1")
    del data["00100010"]
    with pytest.raises(ItemError, match=r"PatientName \(0010,0010\) is required"):
        items_from_dataset(data)


def test_a_resource_warning_from_elsewhere_does_not_refuse_an_item(monkeypatch):
    """The garbage collector may report some other unclosed file while an item is checked
    (a ResourceWarning): that says nothing about the item."""
    import warnings

    from pydicom import Dataset

    real = Dataset.from_json

    def collecting(*args, **kwargs):
        warnings.warn("unclosed file <somebody else's>", ResourceWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(Dataset, "from_json", collecting)
    [item] = items_from_dataset(pydicom_item("P1", "A^B", "X1"))
    assert item.value("PatientID") == "P1"
