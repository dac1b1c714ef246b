"""The worklist inside a running `appliance run`: items imported with the CLI and ordered over
HL7 are answered to DCMTK findscu on the one DICOM port; the status line counts them; bad
[worklist] keys are refused with file, key and reason."""

from __future__ import annotations

import json

import hl7
import hl7.client
import pytest

from tests.config.test_config_files import appliance_cli
from tests.conftest import free_port
from tests.worklist.conftest import ITEMS, findscu
from tests.worklist.test_hl7 import orm


def test_running_appliance_serves_imported_and_hl7_items(appliance, tmp_path):
    hl7_port = free_port()
    proc, port, config_path = appliance({"worklist": {
        "expire_after_hours": 0.0,  # the test items are dated January 2026
        "hl7": {"enabled": True, "bind": "127.0.0.1", "port": hl7_port}}})
    items = tmp_path / "items.json"
    items.write_text(json.dumps(ITEMS, ensure_ascii=False))
    result = appliance_cli("worklist", "import", str(items), "--config", str(config_path),
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with hl7.client.MLLPClient("127.0.0.1", hl7_port) as client:
        client.socket.settimeout(10)
        ack = hl7.parse(client.send_message(orm(accession="HL7ACC")).strip(b"\x0b\x1c\r")
                        .decode())
    assert str(ack.segment("MSA")[1]) == "AA"
    answers = findscu(port, "AccessionNumber", "PatientID").answers
    assert len(answers) == 7 and "HL7ACC" in {a.AccessionNumber for a in answers}
    proc.notify.wait_for(lambda m: "worklist: 7 scheduled" in m)
    proc.notify.wait_for(lambda m: f"worklist-hl7: MLLP on 127.0.0.1:{hl7_port}, 1 messages, "
                         "1 accepted" in m)


BAD = {
    "max_answers 0": ("[worklist]\nmax_answers = 0\n", "worklist.max_answers",
                      "must be between 1 and 100000"),
    "negative expiry": ("[worklist]\nexpire_after_hours = -1.0\n",
                        "worklist.expire_after_hours", "expiry must not be negative"),
    "bad station AE": ('[worklist]\nown_station_only_aets = ["A\\\\B"]\n',
                       "worklist.own_station_only_aets[0]", "must not contain a backslash"),
    "unknown key": ("[worklist]\nmax_answer = 3\n", "worklist.max_answer",
                    "unknown key (did you mean 'max_answers'?)"),
    "hl7 port": ("[worklist.hl7]\nport = 0\n", "worklist.hl7.port", "port must be between"),
    "hl7 bind": ('[worklist.hl7]\nbind = "any"\n', "worklist.hl7.bind",
                 "must be an IPv4 or IPv6 address"),
    "field map keyword": ('[worklist.hl7.field_map]\nPatientId = "PID.3"\n',
                          "worklist.hl7.field_map",
                          "'PatientId' is not a worklist attribute the HL7 feeder can fill"),
    "field map location": ('[worklist.hl7.field_map]\nPatientID = "PID-3"\n',
                           "worklist.hl7.field_map", "'PID-3' is not an HL7 field location"),
    "upstream peer": ('[worklist.upstream]\nenabled = true\npeer = "ris"\n', "worklist",
                      "upstream.peer 'ris' is not one of the [[peers]] (known: none "
                      "configured)"),
    "upstream interval": ("[worklist.upstream]\ninterval = 0.0\n", "worklist.upstream.interval",
                          "must be more than 0"),
    "upstream modality": ('[worklist.upstream]\nmodality = "ct"\n', "worklist.upstream.modality",
                          "must be a modality code"),
    "case option type": ('[worklist]\ncase_insensitive_names = "yes"\n',
                         "worklist.case_insensitive_names", "expected true or false"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_worklist_setting_is_refused(tmp_path, case):
    text, key, reason = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"appliance: {path}: {key}: "), lines[0]
    assert reason in lines[0], lines[0]


def test_good_worklist_settings_are_accepted(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text('[[peers]]\nname = "ris"\nae_title = "RIS"\nhost = "127.0.0.1"\n'
                    '[worklist]\nmax_answers = 50\ncase_insensitive_names = true\n'
                    'own_station_only_aets = ["CT1"]\nexpire_after_hours = 12.0\n'
                    '[worklist.hl7]\nenabled = true\nport = 2575\n'
                    '[worklist.hl7.field_map]\nAccessionNumber = "ORC.3"\nPatientSex = ""\n'
                    '[worklist.upstream]\nenabled = true\npeer = "ris"\ninterval = 30.0\n')
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
