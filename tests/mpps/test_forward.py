"""MPPS forwarding to a RIS (`[mpps] forward_to`): the box served in-process (the native
engine), pynetdicom as the modality, and pynetdicom as the RIS (an MPPS SCP on a free
127.0.0.1 port that records what it receives, in order). The forwarder component runs as
`appliance run` would run it."""

from __future__ import annotations

import threading
import time

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

from appliance.component_list import build_components
from appliance.core.events import EventBus
from appliance.mpps.forwarder import MppsForwarder
from appliance.mpps.queue import ForwardQueue
from tests.config.test_config_files import appliance_cli
from tests.conftest import free_port
from tests.forward.conftest import wait_until
from tests.mpps.conftest import MPPS, final, in_progress

FAST = {"retry_initial": 0.2, "retry_max": 0.5}


class Ris:
    """An MPPS SCP recording (operation, SOP Instance UID, data set) of each request;
    `create_statuses` are answered to the first N-CREATEs (then Success)."""

    def __init__(self, port: int, create_statuses: list[int] | None = None):
        self.port = port
        self.received: list[tuple[str, str, Dataset]] = []
        self.create_statuses = list(create_statuses or [])
        self.lock = threading.Lock()
        self.server = None

    def start(self) -> Ris:
        ae = AE(ae_title="RIS")
        ae.add_supported_context(MPPS)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=[
            (evt.EVT_N_CREATE, self._create), (evt.EVT_N_SET, self._set)])
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def _create(self, event):
        with self.lock:
            self.received.append(("N-CREATE", str(event.request.AffectedSOPInstanceUID),
                                  event.attribute_list))
            status = self.create_statuses.pop(0) if self.create_statuses else 0x0000
        return status, (event.attribute_list if status == 0x0000 else None)

    def _set(self, event):
        with self.lock:
            self.received.append(("N-SET", str(event.request.RequestedSOPInstanceUID),
                                  event.modification_list))
        return 0x0000, None

    def operations(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(op, uid) for op, uid, _ in self.received]


@pytest.fixture
def ris():
    started: list[Ris] = []

    def make(port: int | None = None, create_statuses=None, start: bool = True) -> Ris:
        server = Ris(port or free_port(), create_statuses)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def forwarders():
    running: list[MppsForwarder] = []

    def start(config) -> MppsForwarder:
        component = MppsForwarder(config)
        component.start()
        running.append(component)
        return component

    yield start
    for component in running:
        component.stop(5)


def box(mpps_server, ris_port: int, **mpps):
    peers = [{"name": "ris", "ae_title": "RIS", "host": "127.0.0.1", "port": ris_port}]
    return mpps_server({"forward_to": ["ris"], **FAST, **mpps}, peers=peers)


def wait_for(condition, what: str):
    return wait_until(condition, 30.0, 0.05, what)


def exam(assoc, uid: str) -> tuple[Dataset, Dataset]:
    """N-CREATE then N-SET (COMPLETED) of one step, both answered Success."""
    created, ended = in_progress(), final("COMPLETED")
    status, _ = assoc.send_n_create(created, MPPS, uid)
    assert status.Status == 0x0000
    status, _ = assoc.send_n_set(ended, MPPS, uid)
    assert status.Status == 0x0000
    return created, ended


def test_create_and_set_reach_the_ris_in_order_with_the_same_data(mpps_server, modality, ris,
                                                                  forwarders):
    receiver = ris()
    server, _, service = box(mpps_server, receiver.port)
    component = forwarders(service.config)
    uid = generate_uid()
    created, ended = exam(modality(server.port), uid)

    wait_for(lambda: len(receiver.operations()) == 2, "both requests at the RIS")
    assert receiver.operations() == [("N-CREATE", uid), ("N-SET", uid)]
    assert receiver.received[0][2] == created
    assert receiver.received[1][2] == ended
    queue = ForwardQueue(service.store.db)
    wait_for(lambda: not queue.rows("ris"), "the queue emptied")
    wait_for(lambda: component.status() == "ris: 0 pending, 2 sent", "the status line")


def test_with_the_ris_down_the_modality_gets_success_and_the_rows_wait(mpps_server, modality,
                                                                       ris, forwarders):
    receiver = ris(start=False)
    server, _, service = box(mpps_server, receiver.port)
    forwarders(service.config)
    first, second = generate_uid(), generate_uid()
    assoc = modality(server.port)
    exam(assoc, first)
    status, _ = assoc.send_n_create(in_progress(), MPPS, second)
    assert status.Status == 0x0000

    queue = ForwardQueue(service.store.db)
    wait_for(lambda: all(r.attempts for r in queue.heads("ris", now=float("inf"))),
             "failed attempts recorded")
    rows = queue.rows("ris")
    assert [(r.operation, r.sop_instance_uid) for r in rows] == [
        ("N-CREATE", first), ("N-SET", first), ("N-CREATE", second)]
    assert "cannot connect" in rows[0].last_error or "no association" in rows[0].last_error
    assert rows[1].attempts == 0  # the N-SET was never tried before its N-CREATE went

    receiver.start()
    wait_for(lambda: len(receiver.operations()) == 3, "the three requests at the RIS")
    operations = receiver.operations()
    assert operations.index(("N-CREATE", first)) < operations.index(("N-SET", first))
    assert sorted(operations) == sorted([("N-CREATE", first), ("N-SET", first),
                                         ("N-CREATE", second)])
    wait_for(lambda: not queue.rows("ris"), "the queue emptied")


def test_the_queue_survives_a_restart_of_the_forwarder(mpps_server, modality, ris,
                                                       forwarders):
    receiver = ris(start=False)
    server, _, service = box(mpps_server, receiver.port)
    uid = generate_uid()
    created, ended = exam(modality(server.port), uid)
    queue = ForwardQueue(service.store.db)
    assert [r.operation for r in queue.rows("ris")] == ["N-CREATE", "N-SET"]

    first = forwarders(service.config)
    wait_for(lambda: queue.rows("ris")[0].attempts >= 1, "a failed attempt")
    first.stop(5)
    assert [r.operation for r in queue.rows("ris")] == ["N-CREATE", "N-SET"]

    receiver.start()
    forwarders(service.config)
    wait_for(lambda: len(receiver.operations()) == 2, "both requests at the RIS")
    assert receiver.operations() == [("N-CREATE", uid), ("N-SET", uid)]
    assert receiver.received[0][2] == created and receiver.received[1][2] == ended


def test_a_refused_create_holds_back_its_set_and_a_duplicate_counts_as_delivered(
        mpps_server, modality, ris, forwarders):
    # the first N-CREATE refused (0x0110), the second answered Duplicate SOP Instance
    receiver = ris(create_statuses=[0x0110, 0x0111])
    server, _, service = box(mpps_server, receiver.port)
    uid = generate_uid()
    exam(modality(server.port), uid)
    queue = ForwardQueue(service.store.db)
    forwarders(service.config)

    wait_for(lambda: len(receiver.operations()) == 3, "the three requests at the RIS")
    assert receiver.operations() == [("N-CREATE", uid), ("N-CREATE", uid), ("N-SET", uid)]
    wait_for(lambda: not queue.rows("ris"), "the queue emptied")


def test_a_failure_status_is_kept_as_the_last_error(mpps_server, modality, ris, forwarders):
    receiver = ris(create_statuses=[0x0110] * 1000)
    server, _, service = box(mpps_server, receiver.port, retry_initial=5.0, retry_max=5.0)
    uid = generate_uid()
    exam(modality(server.port), uid)
    queue = ForwardQueue(service.store.db)
    forwarders(service.config)

    wait_for(lambda: queue.rows("ris")[0].attempts == 1, "one failed attempt")
    rows = queue.rows("ris")
    assert "answered N-CREATE status 0x0110" in rows[0].last_error
    assert rows[0].next_attempt > time.time()
    assert receiver.operations() == [("N-CREATE", uid)]  # the N-SET waits behind it


def test_the_forwarder_is_a_supervised_component(tmp_path):
    from appliance.config.schema import ApplianceConfig

    config = ApplianceConfig.model_validate({"device": {"data_dir": str(tmp_path / "data")}})
    names = [c.name for c in build_components(config, EventBus())]
    assert "mpps-forwarder" in names


def test_forward_to_an_unknown_peer_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[peers]]\nname = "pacs"\nae_title = "P"\nhost = "127.0.0.1"\n'
                    '[mpps]\nforward_to = ["ris"]\n')
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert ("mpps: forward_to[0]: 'ris' is not one of the [[peers]] (known: pacs)"
            in result.stdout + result.stderr)


def test_the_keys_and_the_component_are_documented():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for name in ("mpps.forward_to", "mpps.retry_initial", "mpps.retry_max", "mpps-forwarder",
                 "mpps_forward"):
        assert f"`{name}" in readme, name
    assert "forward_to" in (REPO / "docs" / "conformance.md").read_text()


def test_a_refused_request_is_not_queued_and_a_reload_changes_forward_to(mpps_server, modality):
    server, _, service = mpps_server(peers=[
        {"name": "ris", "ae_title": "RIS", "host": "127.0.0.1", "port": free_port()}])
    queue = ForwardQueue(service.store.db)
    assoc = modality(server.port)
    status, _ = assoc.send_n_create(in_progress(), MPPS, generate_uid())
    assert status.Status == 0x0000 and queue.rows() == []  # forward_to empty: nothing queued

    component = MppsForwarder(service.config, service)  # as build_components wires it
    component.reconfigure(service.config.model_copy(
        update={"mpps": service.config.mpps.model_copy(update={"forward_to": ["ris"]})}))
    try:
        uid = generate_uid()
        status, _ = assoc.send_n_create(in_progress(PerformedProcedureStepStatus="COMPLETED"),
                                        MPPS, uid)
        assert status.Status == 0x0106 and queue.rows() == []  # refused: nothing to forward
        status, _ = assoc.send_n_create(in_progress(), MPPS, uid)
        assert status.Status == 0x0000
        assert [(r.operation, r.sop_instance_uid) for r in queue.rows()] == [("N-CREATE", uid)]
        status, _ = assoc.send_n_set(final(PerformedProcedureStepEndDate=""), MPPS, uid)
        assert status.Status == 0x0121 and len(queue.rows()) == 1
    finally:
        component.stop(5)
