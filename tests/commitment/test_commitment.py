"""Storage Commitment Push Model SCP with pynetdicom as the modality: the report on the same
association, every N-ACTION refusal, failure reasons, the report on a new association after
the requester released, an unknown requester, a restart with a transaction pending, a damaged
file, the timeout, and retention keeping what a pending transaction names."""

from __future__ import annotations

import time

import pytest
from pydicom import Dataset
from pydicom.uid import MRImageStorage, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StorageCommitmentPushModel

from appliance.config.schema import ApplianceConfig
from appliance.dicom.storage_config import StorageConfig
from appliance.forward.retention import apply_retention
from appliance.store.queue import ForwardQueue
from tests.commitment.conftest import (
    action_information,
    committed_uids,
    ct_image,
    failed_reasons,
    wait_until,
)


def test_all_stored_is_reported_committed_on_the_same_association(appliance_factory,
                                                                  modality):
    app = appliance_factory()
    images = [ct_image(n) for n in range(3)]
    assoc = modality.associate(app.port)
    modality.store(assoc, images)
    info = action_information(images)
    assert modality.request(assoc, info).Status == 0x0000
    event_type, report, where = modality.wait_report()
    assert (event_type, where) == (1, "same association")
    assert report.TransactionUID == info.TransactionUID
    assert committed_uids(report) == {str(i.SOPInstanceUID) for i in images}
    assert "FailedSOPSequence" not in report
    wait_until(lambda: app.transactions()[0]["reported_at"], what="marked reported")
    assert app.transactions()[0]["state"] == "committed"


def test_failure_reasons(appliance_factory, modality):
    app = appliance_factory()
    stored = ct_image(1)
    assoc = modality.associate(app.port)
    modality.store(assoc, [stored])
    missing = ct_image(2)
    wrong_class = Dataset()
    wrong_class.SOPClassUID = MRImageStorage  # stored as CT
    wrong_class.SOPInstanceUID = stored.SOPInstanceUID
    info = action_information([stored, missing, wrong_class])
    assert modality.request(assoc, info).Status == 0x0000
    event_type, report, _ = modality.wait_report()
    assert event_type == 2
    assert committed_uids(report) == {str(stored.SOPInstanceUID)}
    assert [(str(i.ReferencedSOPInstanceUID), int(i.FailureReason))
            for i in report.FailedSOPSequence] == [
        (str(missing.SOPInstanceUID), 0x0112), (str(stored.SOPInstanceUID), 0x0119)]
    # The same Transaction UID for other instances: every item fails 0x0131
    again = action_information([stored], info.TransactionUID)
    assert modality.request(assoc, again).Status == 0x0000
    event_type, report, _ = modality.wait_report()
    assert event_type == 2 and failed_reasons(report) == {str(stored.SOPInstanceUID): 0x0131}
    # The same request again (its report lost): answered again, same result
    assert modality.request(assoc, info).Status == 0x0000
    event_type, report, _ = modality.wait_report()
    assert event_type == 2 and len(report.FailedSOPSequence) == 2
    assert len(app.transactions()) == 2


def _without(target: Dataset, keyword: str) -> None:
    delattr(target, keyword)


@pytest.mark.parametrize("change, status, named", [
    (lambda info: _without(info, "TransactionUID") or info, 0x0115, "(0008,1195)"),
    (lambda info: setattr(info, "TransactionUID", "") or info, 0x0115, "(0008,1195)"),
    (lambda info: setattr(info, "TransactionUID", "1.2.abc") or info, 0x0115, "(0008,1195)"),
    (lambda info: _without(info, "ReferencedSOPSequence") or info, 0x0115, "(0008,1199)"),
    (lambda info: setattr(info, "ReferencedSOPSequence", []) or info, 0x0115, "(0008,1199)"),
    (lambda info: _without(info.ReferencedSOPSequence[0], "ReferencedSOPInstanceUID") or info,
     0x0115, "(0008,1155)"),
    (lambda info: _without(info.ReferencedSOPSequence[0], "ReferencedSOPClassUID") or info,
     0x0115, "(0008,1150)"),
])
def test_refused_requests_name_the_attribute(appliance_factory, modality, change, status,
                                             named):
    app = appliance_factory()
    assoc = modality.associate(app.port)
    info = change(action_information([ct_image()]))
    answer = modality.request(assoc, info)
    assert answer.Status == status
    assert named in str(answer.ErrorComment)
    assert app.transactions() == []


def test_wrong_instance_and_action_type_are_refused(appliance_factory, modality):
    app = appliance_factory()
    assoc = modality.associate(app.port)
    info = action_information([ct_image()])
    assert modality.request(assoc, info, instance=generate_uid()).Status == 0x0112
    assert modality.request(assoc, info, action_type=2).Status == 0x0123
    assert modality.request(assoc, None).Status == 0x0115
    assert app.transactions() == []


def test_disabled_refuses_the_context(appliance_factory):
    app = appliance_factory(storage_commitment={"enabled": False})
    ae = AE(ae_title="CT1")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate("127.0.0.1", app.port, ae_title="EDGEBOX")
    try:
        assert not assoc.is_established or not assoc.accepted_contexts
    finally:
        if assoc.is_established:
            assoc.release()


def test_forwarded_waits_for_the_pacs_then_reports_on_a_new_association(
        appliance_factory, modality, orthanc):
    orthanc.stop()  # the PACS is down
    modality.listen()
    app = appliance_factory(peers=[modality.peer(), orthanc.peer()],
                            storage_commitment={"commit_when": "forwarded"},
                            destinations=[{"peer": "pacs", "retry_initial": 0.2,
                                           "retry_max": 0.5}])
    images = [ct_image(n) for n in range(2)]
    assoc = modality.associate(app.port)
    modality.store(assoc, images)
    assert modality.request(assoc, action_information(images)).Status == 0x0000
    time.sleep(2)  # forward attempts fail meanwhile: nothing is decided
    assert modality.reports == []
    assoc.release()
    assert app.transactions()[0]["state"] == "pending"
    orthanc.start()  # back: once it has both, the report goes to the requester's [[peers]]
    event_type, report, where = modality.wait_report(timeout=60)
    assert (event_type, where) == (1, "new association")
    assert committed_uids(report) == {str(i.SOPInstanceUID) for i in images}
    assert set(orthanc.sop_instance_uids()) == {str(i.SOPInstanceUID) for i in images}
    wait_until(lambda: app.transactions()[0]["report_via"], what="marked reported")
    row = app.transactions()[0]
    assert row["state"] == "committed" and row["report_via"] == "new association to ct1"


def requested_and_released(app, modality, count: int = 2) -> list[Dataset]:
    """`count` CT images stored and named in one commitment request, then the modality
    released (a report must come on a new association); a moment for the box to look."""
    images = [ct_image(n) for n in range(count)]
    assoc = modality.associate(app.port)
    modality.store(assoc, images)
    assert modality.request(assoc, action_information(images)).Status == 0x0000
    assoc.release()
    time.sleep(1.5)
    return images


def test_timeout_ends_a_pending_transaction_with_failures(appliance_factory, modality):
    modality.listen()
    down = {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 1}
    app = appliance_factory(peers=[modality.peer(), down],
                            storage_commitment={"commit_when": "forwarded",
                                                "timeout_hours": 0.01},
                            destinations=[{"peer": "pacs", "retry_initial": 0.2,
                                           "retry_max": 0.5}])
    images = requested_and_released(app, modality)
    assert app.transactions()[0]["state"] == "pending"
    # 36 seconds later, as far as the transaction knows
    app.storage.store.db.connection().execute(
        "UPDATE commitment_transactions SET received_at = received_at - 40")
    app.commitment.wake()
    event_type, report, where = modality.wait_report()
    assert (event_type, where) == (2, "new association")
    assert failed_reasons(report) == {str(i.SOPInstanceUID): 0x0110 for i in images}
    assert app.transactions()[0]["state"] == "failed"


def test_unknown_requester_is_kept_and_reported_once_configured(appliance_factory, modality,
                                                                caplog):
    app = appliance_factory(storage_commitment={"commit_when": "forwarded"},
                            peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1",
                                    "port": 1}],
                            destinations=[{"peer": "pacs"}])
    app.forwarder.stop(2)
    image = ct_image()
    assoc = modality.associate(app.port)
    modality.store(assoc, [image])
    assert modality.request(assoc, action_information([image])).Status == 0x0000
    assoc.release()
    # the PACS acknowledged it after the requester released; CT1 is in no [[peers]] entry
    app.storage.store.db.connection().execute("UPDATE forward_queue SET state = 'done'")
    app.commitment.wake()
    wait_until(lambda: app.transactions()[0]["report_error"], what="report tried")
    row = app.transactions()[0]
    assert row["state"] == "committed" and row["reported_at"] is None
    assert "no [[peers]] entry" in row["report_error"]
    assert "no [[peers]] entry" in caplog.text
    assert "1 report(s) waiting" in app.commitment.status()
    modality.listen()
    app.commitment.reconfigure(ApplianceConfig.model_validate(
        {**app.config.model_dump(), "peers": [*app.config.model_dump()["peers"],
                                               modality.peer()]}))
    event_type, report, where = modality.wait_report()
    assert (event_type, where) == (1, "new association")


def test_not_running_answers_processing_failure(appliance_factory, modality):
    app = appliance_factory()
    app.commitment.stop(2)
    assoc = modality.associate(app.port)
    assert modality.request(assoc, action_information([ct_image()])).Status == 0x0110


def test_pending_transaction_survives_a_restart(appliance_factory, modality, storescp):
    pacs_port = storescp("PACS")
    sections = {"storage_commitment": {"commit_when": "forwarded"},
                "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 0.5}]}
    modality.listen()
    down = {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 1}
    app = appliance_factory(peers=[modality.peer(), down], **sections)
    images = requested_and_released(app, modality)
    assert app.transactions()[0]["state"] == "pending"
    app.stop()
    up = dict(down, port=pacs_port)
    again = appliance_factory(peers=[modality.peer(), up], **sections)
    event_type, report, where = modality.wait_report(timeout=40)
    assert (event_type, where) == (1, "new association")
    assert committed_uids(report) == {str(i.SOPInstanceUID) for i in images}
    assert again.transactions()[0]["state"] == "committed"


def test_damaged_file_is_reported_failed(appliance_factory, modality):
    app = appliance_factory()
    images = [ct_image(n) for n in range(2)]
    assoc = modality.associate(app.port)
    modality.store(assoc, images)
    app.hashed(2)
    conn = app.storage.store.db.connection()
    path = app.storage.store.root / conn.execute(
        "SELECT path FROM instances WHERE sop_instance_uid = ?",
        (str(images[1].SOPInstanceUID),)).fetchone()[0]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    path.write_bytes(bytes(data))
    assert modality.request(assoc, action_information(images)).Status == 0x0000
    event_type, report, _ = modality.wait_report()
    assert event_type == 2
    assert failed_reasons(report) == {str(images[1].SOPInstanceUID): 0x0110}
    assert committed_uids(report) == {str(images[0].SOPInstanceUID)}


def test_retention_keeps_what_a_pending_transaction_names(appliance_factory, modality):
    app = appliance_factory(storage_commitment={"commit_when": "forwarded"},
                            peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1",
                                    "port": 1}],
                            destinations=[{"peer": "pacs"}])
    app.forwarder.stop(2)  # the queue rows stay pending: the transaction too
    named, other = ct_image(1), ct_image(2)
    assoc = modality.associate(app.port)
    modality.store(assoc, [named, other])
    assert modality.request(assoc, action_information([named])).Status == 0x0000
    app.commitment.stop(2)  # the transaction stays pending (not decided) ...
    store = app.storage.store
    conn = store.db.connection()
    conn.execute("UPDATE forward_queue SET state = 'done'")  # ... though both were forwarded
    assert [t["state"] for t in app.transactions()] == ["pending"]
    deleted = apply_retention(store, ForwardQueue(store.db),
                              StorageConfig(retention_days=0, high_water_percent=99))
    assert deleted == 1
    left = [r[0] for r in conn.execute("SELECT sop_instance_uid FROM instances")]
    assert left == [str(named.SOPInstanceUID)]


def test_a_modality_releasing_at_once_still_gets_its_report(appliance_factory, modality):
    # the usual modality: N-ACTION, then A-RELEASE right after the response. A report the
    # association's end left undelivered goes on a new association (before: often lost,
    # and counted as sent)
    modality.listen()
    app = appliance_factory(peers=[modality.peer()])
    for attempt in range(5):
        images = [ct_image(attempt)]
        assoc = modality.associate(app.port)
        modality.store(assoc, images)
        assert modality.request(assoc, action_information(images)).Status == 0x0000
        assoc.release()
        event_type, report, _ = modality.wait_report(timeout=10)
        assert event_type == 1 and committed_uids(report) == {str(images[0].SOPInstanceUID)}
    wait_until(lambda: all(row["reported_at"] for row in app.transactions()),
               what="every report counted as sent")
