"""The MPPS SCP as a modality sees it (pynetdicom as the SCU against the native engine): the
exam's procedure step kept and driving its worklist item, and each refusal the standard asks
for, naming the attribute."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.uid import generate_uid

from appliance.mpps.attributes import CREATE_TYPE_1
from tests.conftest import write_config
from tests.mpps.conftest import MPPS, final, in_progress, scheduled_step, worklist_list


def item_status(worklist, accession: str) -> str:
    [row] = worklist.store.select("accession_number = ?", (accession,))
    return row.status


def attribute_ids(status) -> list[int]:
    value = status.get("AttributeIdentifierList")
    if value is None:
        return []
    return [int(value)] if isinstance(value, int) else [int(tag) for tag in value]


def test_exam_started_then_completed_drives_the_worklist_item(mpps_server, modality, tmp_path):
    server, worklist, service = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()

    status, reply = assoc.send_n_create(in_progress(), MPPS, uid)
    assert status.Status == 0x0000
    assert reply.PerformedProcedureStepStatus == "IN PROGRESS"
    assert item_status(worklist, "A1001") == "IN PROGRESS"
    assert item_status(worklist, "A1002") == "SCHEDULED"

    update = Dataset()
    update.PerformedProcedureStepDescription = "CT HEAD WITHOUT CONTRAST"
    status, _ = assoc.send_n_set(update, MPPS, uid)
    assert status.Status == 0x0000
    assert item_status(worklist, "A1001") == "IN PROGRESS"

    done = final("COMPLETED")
    status, _ = assoc.send_n_set(done, MPPS, uid)
    assert status.Status == 0x0000
    assert item_status(worklist, "A1001") == "COMPLETED"

    step = service.store.get(uid)
    assert step.status == "COMPLETED" and step.calling_aet == "CT1" and step.scheduled
    assert step.data.PerformedProcedureStepDescription == "CT HEAD WITHOUT CONTRAST"
    assert step.data.PerformedSeriesSequence[0].SeriesInstanceUID == \
        done.PerformedSeriesSequence[0].SeriesInstanceUID
    assert step.data.PatientID == "1001"

    # the command line shows it (reading the same database)
    config = write_config(tmp_path / "cli.toml",
                          {"device": {"data_dir": str(tmp_path / "data")}})
    listing = worklist_list(config, "--all")
    [line] = [row for row in listing.stdout.splitlines() if "A1001" in row]
    assert "COMPLETED" in line
    active = worklist_list(config)
    assert "A1001" not in active.stdout and "A1002" in active.stdout


def test_in_progress_item_is_listed_as_such(mpps_server, modality, tmp_path):
    server, worklist, _ = mpps_server()
    status, _ = modality(server.port).send_n_create(in_progress(), MPPS, generate_uid())
    assert status.Status == 0x0000
    config = write_config(tmp_path / "cli.toml",
                          {"device": {"data_dir": str(tmp_path / "data")}})
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
    listing = subprocess.run([sys.executable, "-m", "appliance", "worklist", "list",
                              "--config", str(config)], capture_output=True, text=True,
                             env=env, timeout=60)
    [line] = [row for row in listing.stdout.splitlines() if "A1001" in row]
    assert "IN PROGRESS" in line


def test_discontinued_exam_discontinues_the_item(mpps_server, modality):
    server, worklist, _ = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
    stop = final("DISCONTINUED")
    del stop.PerformedSeriesSequence  # nothing acquired: allowed for DISCONTINUED
    assert assoc.send_n_set(stop, MPPS, uid)[0].Status == 0x0000
    assert item_status(worklist, "A1001") == "DISCONTINUED"


@pytest.mark.parametrize("keyword", CREATE_TYPE_1)
def test_n_create_without_a_type_1_attribute_is_refused_naming_it(mpps_server, modality,
                                                                 keyword):
    server, worklist, service = mpps_server()
    uid = generate_uid()
    status, _ = modality(server.port).send_n_create(in_progress(**{keyword: None}), MPPS, uid)
    assert status.Status == 0x0120
    assert keyword in status.ErrorComment  # (pynetdicom hides an N-CREATE-RSP's (0000,1005))
    assert service.store.get(uid) is None
    assert item_status(worklist, "A1001") == "SCHEDULED"


def test_n_create_with_an_empty_type_1_value_is_refused(mpps_server, modality):
    server, _, _ = mpps_server()
    status, _ = modality(server.port).send_n_create(
        in_progress(PerformedStationAETitle=""), MPPS, generate_uid())
    assert status.Status == 0x0121
    assert "PerformedStationAETitle" in status.ErrorComment


def test_scheduled_step_without_study_uid_is_refused(mpps_server, modality):
    server, _, _ = mpps_server()
    step = scheduled_step()
    del step.StudyInstanceUID
    status, _ = modality(server.port).send_n_create(in_progress(step), MPPS, generate_uid())
    assert status.Status == 0x0120
    assert "StudyInstanceUID" in status.ErrorComment


@pytest.mark.parametrize("value", ["COMPLETED", "DISCONTINUED", "SCHEDULED"])
def test_n_create_not_in_progress_is_refused(mpps_server, modality, value):
    server, worklist, service = mpps_server()
    uid = generate_uid()
    status, _ = modality(server.port).send_n_create(
        in_progress(PerformedProcedureStepStatus=value), MPPS, uid)
    assert status.Status == 0x0106
    assert "IN PROGRESS" in status.ErrorComment and value in status.ErrorComment
    assert service.store.get(uid) is None


def test_duplicate_n_create_is_refused(mpps_server, modality):
    server, _, service = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
    status, _ = assoc.send_n_create(in_progress(PatientID="OTHER"), MPPS, uid)
    assert status.Status == 0x0111
    assert service.store.get(uid).data.PatientID == "1001"


def test_n_set_of_an_unknown_instance_is_refused(mpps_server, modality):
    server, _, _ = mpps_server()
    status, _ = modality(server.port).send_n_set(final(), MPPS, generate_uid())
    assert status.Status == 0x0112


@pytest.mark.parametrize("ending", ["COMPLETED", "DISCONTINUED"])
def test_n_set_after_the_final_state_is_refused(mpps_server, modality, ending):
    server, worklist, service = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
    assert assoc.send_n_set(final(ending), MPPS, uid)[0].Status == 0x0000
    again = final("IN PROGRESS")
    status, _ = assoc.send_n_set(again, MPPS, uid)
    assert status.Status == 0x0110
    assert status.ErrorID == 0xA710
    assert "no longer be updated" in status.ErrorComment and ending in status.ErrorComment
    assert service.store.get(uid).status == ending
    assert item_status(worklist, "A1001") == ending


@pytest.mark.parametrize("keyword, value", [("PatientID", "9999"), ("Modality", "MR"),
                                            ("PerformedProcedureStepStartDate", "20260116")])
def test_n_set_of_a_not_settable_attribute_is_refused(mpps_server, modality, keyword, value):
    server, _, service = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    created = in_progress()
    assert assoc.send_n_create(created, MPPS, uid)[0].Status == 0x0000
    change = final()
    setattr(change, keyword, value)
    status, _ = assoc.send_n_set(change, MPPS, uid)
    assert status.Status == 0x0105
    assert keyword in status.ErrorComment
    assert attribute_ids(status) == [tag_for_keyword(keyword)]
    step = service.store.get(uid)
    assert step.status == "IN PROGRESS"
    assert getattr(step.data, keyword) == getattr(created, keyword)


@pytest.mark.parametrize("missing", ["PerformedProcedureStepEndDate",
                                     "PerformedProcedureStepEndTime",
                                     "PerformedSeriesSequence"])
def test_completed_without_its_final_attributes_is_refused(mpps_server, modality, missing):
    server, worklist, service = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
    status, _ = assoc.send_n_set(final(**{missing: None}), MPPS, uid)
    assert status.Status in (0x0120, 0x0121)  # absent, or empty as N-CREATE left it
    assert missing in status.ErrorComment
    assert attribute_ids(status) == [tag_for_keyword(missing)]
    assert service.store.get(uid).status == "IN PROGRESS"
    assert item_status(worklist, "A1001") == "IN PROGRESS"


def test_n_set_with_an_unknown_status_is_refused(mpps_server, modality):
    server, _, _ = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
    status, _ = assoc.send_n_set(final("FINISHED"), MPPS, uid)
    assert status.Status == 0x0106 and "FINISHED" in status.ErrorComment


def test_unscheduled_exam_is_kept_and_leaves_the_worklist_alone(mpps_server, modality):
    server, worklist, service = mpps_server()
    assoc = modality(server.port)
    uid = generate_uid()
    step = scheduled_step(study=generate_uid(), accession="", rp_id="", sps_id="")
    assert assoc.send_n_create(in_progress(step, PatientID="WALKIN"), MPPS, uid)[0].Status == 0
    assert assoc.send_n_set(final(), MPPS, uid)[0].Status == 0x0000
    kept = service.store.get(uid)
    assert kept.status == "COMPLETED" and not kept.scheduled and kept.patient_id == "WALKIN"
    assert {row.status for row in worklist.store.select()} == {"SCHEDULED"}


def test_scheduled_step_matched_by_its_keys_even_with_the_modalitys_own_study_uid(
        mpps_server, modality):
    server, worklist, _ = mpps_server()
    step = scheduled_step(study=generate_uid(), accession="A1002", rp_id="RP2", sps_id="S2")
    status, _ = modality(server.port).send_n_create(in_progress(step), MPPS, generate_uid())
    assert status.Status == 0x0000
    assert item_status(worklist, "A1002") == "IN PROGRESS"
    assert item_status(worklist, "A1001") == "SCHEDULED"


def test_disabled_mpps_is_not_negotiated(mpps_server, modality):
    server, _, _ = mpps_server({"enabled": False})
    assoc = modality(server.port)
    assert not any(cx.abstract_syntax == MPPS for cx in assoc.accepted_contexts)
    enabled, _, _ = mpps_server({"enabled": True}, data="data-enabled")
    assert any(cx.abstract_syntax == MPPS for cx in modality(enabled.port).accepted_contexts)


def test_procedure_steps_survive_a_restart(mpps_server, modality):
    first, _, _ = mpps_server()
    uid = generate_uid()
    assert modality(first.port).send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
    first.stop(timeout=1)

    second, worklist, service = mpps_server()
    assoc = modality(second.port)
    assert item_status(worklist, "A1001") == "IN PROGRESS"
    assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0111
    assert assoc.send_n_set(final(), MPPS, uid)[0].Status == 0x0000
    assert service.store.get(uid).status == "COMPLETED"
    assert item_status(worklist, "A1001") == "COMPLETED"
