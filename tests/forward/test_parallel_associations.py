"""`associations` (issue 14, the relay target): the batch lanes of a destination keep that many
associations open at once, each sending its own batches; every instance is delivered exactly
once; a peer that takes only one association at a time still gets everything, without the
destination backing off; `associations = 1` keeps one association. Shown with the worker's own
threads against a real pynetdicom Storage SCP on 127.0.0.1 that records how many associations
it holds at once, and end to end through `appliance run` into a real Orthanc."""

from __future__ import annotations

import logging
import threading
import time

from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage

from appliance.dicom.peer_config import PeerConfig
from appliance.forward.config import DestinationConfig
from appliance.forward.lanes import InFlight, share
from appliance.forward.worker import DestinationWorker
from appliance.store.instances import INSTANCES_DIR, open_database
from appliance.store.queue import QueueItem
from tests.conftest import free_port
from tests.forward.conftest import wait_until
from tests.forward.test_forward_orthanc import queue_cli, queue_json, uids
from tests.forward.test_poison_instance import held_destination, store_directly
from tests.storage.dicom_files import make_study, storescu


class CountingPacs:
    """A Storage SCP that takes `store_seconds` per C-STORE, accepts at most `limit`
    associations at once (more are rejected: transient, local limit exceeded) and records the
    most it held at once and every instance with the association that carried it."""

    def __init__(self, limit: int = 10, store_seconds: float = 0.02):
        self.port = free_port()
        self.store_seconds = store_seconds
        self.lock = threading.Lock()
        self.open: set[object] = set()
        self.most_at_once = 0
        self.established = 0
        self.received: list[tuple[object, str]] = []  # (association, SOP Instance UID)
        ae = AE(ae_title="COUNTING")
        ae.maximum_associations = limit
        ae.add_supported_context(CTImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_ESTABLISHED, self._on_open),
                    (evt.EVT_RELEASED, self._on_end), (evt.EVT_ABORTED, self._on_end),
                    (evt.EVT_CONN_CLOSE, self._on_end)]
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=handlers)

    def _on_open(self, event):
        with self.lock:
            self.open.add(event.assoc)
            self.established += 1
            self.most_at_once = max(self.most_at_once, len(self.open))

    def _on_end(self, event):
        with self.lock:
            self.open.discard(event.assoc)

    def _on_store(self, event):
        time.sleep(self.store_seconds)
        with self.lock:
            self.received.append((event.assoc, str(event.request.AffectedSOPInstanceUID)))
        return 0x0000

    def uids(self) -> list[str]:
        with self.lock:
            return sorted(uid for _, uid in self.received)

    def carriers(self) -> int:
        """How many associations carried instances."""
        with self.lock:
            return len({assoc for assoc, _ in self.received})

    def peer(self) -> dict:
        return {"name": "counting", "ae_title": "COUNTING", "host": "127.0.0.1",
                "port": self.port}

    def close(self) -> None:
        self.server.shutdown()


def run_worker(tmp_path, pacs: CountingPacs, count: int, **settings):
    """`count` instances stored and queued for the PACS, sent by a running worker (its own
    threads) until all are marked done; (their UIDs, the queue's rows, the destination row)."""
    study = make_study(tmp_path / "study", count)
    for path in study:
        store_directly(tmp_path / "data", path, "counting")
    db = open_database(tmp_path / "data")
    worker = DestinationWorker(db, DestinationConfig(peer="counting", **settings),
                               PeerConfig(**pacs.peer()), "EDGEBOX",
                               tmp_path / "data" / INSTANCES_DIR)

    def states():
        return db.connection().execute(
            "SELECT i.sop_instance_uid, q.state, q.attempts FROM forward_queue q JOIN "
            "instances i ON i.id = q.instance_id").fetchall()

    worker.start()
    try:
        wait_until(lambda: all(state == "done" for _, state, _ in states()), 60,
                   what="every instance marked done")
    finally:
        worker.stop(10)
    rows = {uid: (state, attempts) for uid, state, attempts in states()}
    destination = db.connection().execute(
        "SELECT failures, next_attempt, last_error FROM forward_destinations WHERE "
        "destination = 'counting'").fetchone()
    db.close()
    return uids(study), rows, tuple(destination)


def test_three_associations_are_open_at_once_and_each_instance_goes_once(tmp_path):
    pacs = CountingPacs()
    try:
        sent, rows, destination = run_worker(tmp_path, pacs, 60, associations=3,
                                             batch_size=10)
    finally:
        pacs.close()
    assert pacs.most_at_once == 3 and pacs.carriers() >= 3
    assert pacs.uids() == sent  # each exactly once: no instance in two batches
    assert rows == {uid: ("done", 0) for uid in sent}
    assert destination == (0, 0, None)


def test_one_association_keeps_to_one(tmp_path):
    pacs = CountingPacs()
    try:
        sent, rows, _ = run_worker(tmp_path, pacs, 30, associations=1, batch_size=10)
    finally:
        pacs.close()
    assert pacs.most_at_once == 1 and pacs.established == 1
    assert pacs.uids() == sent and rows == {uid: ("done", 0) for uid in sent}


def test_a_peer_taking_one_association_gets_everything_without_a_backoff(tmp_path, caplog):
    pacs = CountingPacs(limit=1)
    caplog.set_level(logging.DEBUG, logger="appliance.forward.worker")
    try:
        sent, rows, destination = run_worker(tmp_path, pacs, 40, associations=3,
                                             batch_size=5, retry_initial=0.2, retry_max=0.5)
    finally:
        pacs.close()
    assert pacs.most_at_once == 1 and pacs.uids() == sent
    assert rows == {uid: ("done", 0) for uid in sent}
    assert destination == (0, 0, None)  # never backed off, no error recorded
    refused = [r for r in caplog.records if "association" in r.getMessage()
               and "not opened" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING, caplog.text
    assert "rejected" in refused[0].getMessage()
    # ... and the refused lanes tried again (quietly) while the first one sent
    assert any("further association refused" in r.getMessage() for r in caplog.records
               if r.levelno == logging.DEBUG)


def test_lanes_share_the_due_instances_and_never_claim_one_twice():
    assert [share(n, 2, 50) for n in (0, 1, 2, 3, 99, 100, 101, 500)] == \
        [0, 1, 1, 2, 50, 50, 50, 50]
    assert [share(n, 3, 10) for n in (1, 4, 7, 30, 31)] == [1, 2, 3, 10, 10]
    items = [QueueItem(i, f"{i}.dcm", "1.2", f"1.2.{i}", "1.2.840.10008.1.2.1", 0, float(i))
             for i in range(7)]

    def due(limit):
        return items[:limit]

    in_flight = InFlight(3)
    first, busy = in_flight.claim(due, 10)
    assert [i.instance_id for i in first] == [0, 1, 2] and not busy
    second, _ = in_flight.claim(due, 10)
    assert [i.instance_id for i in second] == [3, 4]  # its share of the 4 left
    assert [i.instance_id for i in in_flight.peek(due, 10)] == [5]
    third, _ = in_flight.claim(due, 10)
    fourth, _ = in_flight.claim(due, 10)
    assert [i.instance_id for i in third + fourth] == [5, 6]
    nothing, busy = in_flight.claim(due, 10)
    assert nothing == [] and busy  # everything due is in flight on the other lanes
    in_flight.release(second)
    again, _ = in_flight.claim(due, 10)
    assert [i.instance_id for i in again] == [3]  # given back: due again


def test_orthanc_gets_every_instance_once_over_several_associations(appliance, orthanc,
                                                                    tmp_path):
    port, config = held_destination(appliance, orthanc.peer(), associations=3, batch_size=5)
    study = make_study(tmp_path / "study", 40)
    assert storescu(port, study).returncode == 0
    wait_until(lambda: queue_json(config)["pacs"]["pending"] == 40, 10, what="40 queued")
    assert queue_cli(config, "release", "pacs").returncode == 0
    wait_until(lambda: len(orthanc.sop_instance_uids()) == 40, 60, what="40 in Orthanc")
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["done"] == 40 and s, 10)
    assert status["pending"] == 0 and status["failed"] == 0 and status["last_error"] is None
    assert sorted(orthanc.sop_instance_uids()) == uids(study)
    assert orthanc.new_instance_changes() == 40
