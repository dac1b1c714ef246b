"""Worklist item lifecycle: completed when storage announces a study with the item's Study
Instance UID or Accession Number (event `instance.stored`), expired a set time after the
scheduled start; neither is answered any more."""

from __future__ import annotations

from datetime import datetime, timedelta

from appliance.config.schema import ApplianceConfig
from appliance.core.events import EventBus
from appliance.dicom.engine_server import EngineServer
from appliance.worklist.lifecycle import WorklistLifecycle, expire
from appliance.worklist.scp import WorklistService
from tests.conftest import free_port
from tests.worklist.conftest import ITEMS, findscu, item, load


def make(tmp_path, worklist=None):
    config = ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path / "data")},
        "dicom": {"port": free_port(), "bind": "127.0.0.1"}, "worklist": worklist or {}})
    bus = EventBus()
    service = WorklistService(config, bus)
    load(service, ITEMS)
    return config, bus, service


def scheduled_ids(port) -> list[str]:
    return sorted(str(a.PatientID) for a in findscu(port, "PatientID").answers)


def test_study_arrival_completes_the_item(tmp_path):
    config, bus, service = make(tmp_path, {"expire_after_hours": 0.0})
    lifecycle = WorklistLifecycle(config, bus, service)
    lifecycle.start()
    server = EngineServer(config, [service])
    server.start()
    try:
        seen = []
        bus.subscribe(lambda e: seen.append(e.data), "worklist.item")
        bus.publish("instance.stored", study_instance_uid="1.2.3.1", accession_number="")
        bus.publish("instance.stored", study_instance_uid="9.9.9", accession_number="A1004")
        bus.publish("instance.stored", study_instance_uid="7.7.7", accession_number="NONE")
        assert scheduled_ids(server.port) == ["1002", "1003", "1005", "1006"]
        assert service.store.counts()["COMPLETED"] == 2
        assert {"action": "status", "status": "COMPLETED", "count": 1} in seen
        assert lifecycle.status().startswith("4 scheduled, 2 completed")
        lifecycle.stop(1)
        bus.publish("instance.stored", study_instance_uid="1.2.3.2", accession_number="")
        assert service.store.counts()["COMPLETED"] == 2  # unsubscribed when stopped
    finally:
        server.stop(1)


def test_items_expire_after_the_configured_time(tmp_path):
    _, _, service = make(tmp_path)
    # 24 h after 15 Jan 09:30 has passed at 16 Jan 10:00, not 24 h after 15 Jan 14:30
    assert expire(service.store, 24, now=datetime(2026, 1, 16, 10, 0)) == 1
    assert expire(service.store, 24, now=datetime(2026, 1, 16, 10, 0)) == 0
    assert expire(service.store, 0, now=datetime(2030, 1, 1)) == 0  # 0 = never
    assert expire(service.store, 1, now=datetime(2026, 1, 17, 11, 15)) == 4
    remaining = [r.item.value("PatientID") for r in service.store.select("status='SCHEDULED'")]
    assert remaining == ["1006"]


def test_lifecycle_component_expires_on_start(tmp_path):
    config = ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path / "data")}, "worklist": {"expire_after_hours": 2.0}})
    service = WorklistService(config)
    now = datetime.now()
    three_hours_ago, in_an_hour = now - timedelta(hours=3), now + timedelta(hours=1)
    load(service, [item("OLD", "OLD^ONE", "A1", "CT", "CT1", f"{three_hours_ago:%Y%m%d}",
                        f"{three_hours_ago:%H%M%S}"),
                   item("NEW", "NEW^ONE", "A2", "CT", "CT1", f"{in_an_hour:%Y%m%d}",
                        f"{in_an_hour:%H%M%S}")])
    lifecycle = WorklistLifecycle(config, EventBus(), service)
    lifecycle.start()
    assert [r.item.value("PatientID") for r in service.store.select("status='SCHEDULED'")] == [
        "NEW"]
    assert service.store.counts()["EXPIRED"] == 1


def test_status_line_counts_are_reused_for_a_while_but_not_after_a_change(tmp_path):
    """The supervisor asks for the status five times a second: counting 100,000 rows each
    time cost ~2.5% of a core, so a count up to STATUS_MAX_AGE old is shown, unless this
    process changed rows since."""
    config, bus, service = make(tmp_path)
    lifecycle = WorklistLifecycle(config, bus, service)
    assert lifecycle.status().startswith("6 scheduled")
    # another process (the CLI) deletes a row: not seen at once...
    with service.store.db.transaction() as tx:
        tx.execute("DELETE FROM worklist_items WHERE patient_id='1006'")
    assert lifecycle.status().startswith("6 scheduled")
    assert service.store.counts()["SCHEDULED"] == 5  # ...though a plain count is exact
    assert lifecycle.status().startswith("5 scheduled")
    # a change through this store is seen at once
    load(service, [item("2001", "NEW^ONE", "A2001", "CT", "CT1", "20260120", "080000")])
    assert lifecycle.status().startswith("6 scheduled")


def test_later_instances_of_a_study_take_no_write_transaction(tmp_path):
    """Storage announces every instance: only one that completes an item writes (the first of
    its study); the others only read."""
    config, bus, service = make(tmp_path, {"expire_after_hours": 0.0})
    lifecycle = WorklistLifecycle(config, bus, service)
    lifecycle.start()
    statements: list[str] = []
    service.store.db.connection().set_trace_callback(statements.append)
    try:
        for _ in range(3):
            bus.publish("instance.stored", study_instance_uid="1.2.3.1", accession_number="")
        bus.publish("instance.stored", study_instance_uid="7.7.7", accession_number="NONE")
    finally:
        service.store.db.connection().set_trace_callback(None)
        lifecycle.stop(1)
    writes = [s for s in statements if s.split()[0].upper() in ("BEGIN", "UPDATE", "COMMIT")]
    assert [w.split()[0].upper() for w in writes] == ["BEGIN", "UPDATE", "COMMIT"]
    assert service.store.counts()["COMPLETED"] == 1
