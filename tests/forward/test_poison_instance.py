"""One instance the destination will not take holds up nobody: the instance in flight when the
destination aborts or times out is sent alone from then on, with its own reason in the queue,
and the others go out at once on a new association; a stored file that cannot be read fails at
once with the reason. Shown with a real Orthanc (a truncated stored file) and with a real
pynetdicom SCP on 127.0.0.1 that aborts the association for one SOP Instance UID, answers
0xA700 for another, answers a third only after the sender's timeout, or stops taking the data
of a large one for longer than it. A queue database of the previous firmware is migrated with
its rows kept."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from pydicom import dcmread
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage

from appliance.store.database import Database
from appliance.store.instances import (
    INCOMING_DIR,
    MIGRATIONS,
    InstanceMeta,
    InstanceStore,
    open_database,
)
from appliance.store.queue import ForwardQueue
from tests.conftest import free_port
from tests.forward.conftest import wait_until
from tests.forward.test_forward_orthanc import queue_cli, queue_json, uids
from tests.storage.dicom_files import make_study, storescu


def store_directly(data_dir, path, destination: str) -> str:
    """Put a file into the appliance's store and queue as it is (bytes unchanged), the way a
    data set the receive check let through would be; returns its SOP Instance UID."""
    ds = dcmread(path, stop_before_pixels=True)
    store = InstanceStore(data_dir)
    try:
        temp = store.root / INCOMING_DIR / "poison.tmp"
        shutil.copyfile(path, temp)
        meta = InstanceMeta(str(ds.SOPInstanceUID), str(ds.SOPClassUID),
                            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                            str(ds.PatientID), str(ds.PatientName), "CT", "STORESCU",
                            str(ds.file_meta.TransferSyntaxUID))
        assert store.commit(temp, meta, [destination], "keep_first").action == "stored"
    finally:
        store.close()
        store.db.close()
    return str(ds.SOPInstanceUID)


def truncated_copy(path, directory):
    """The same image with the end of its pixel data cut off (Orthanc cannot read it)."""
    directory.mkdir(parents=True, exist_ok=True)
    bad = directory / "truncated.dcm"
    data = path.read_bytes()
    bad.write_bytes(data[:len(data) - 4000])
    return bad


def held_destination(appliance, peer: dict, **destination):
    """A running appliance whose one destination `peer` is held (so a batch builds up)."""
    sections = {"peers": [peer],
                "destinations": [{"peer": peer["name"], "batch_size": 50, "timeout": 3,
                                  # a long backoff: an innocent instance must never wait it out
                                  "retry_initial": 120, "retry_max": 600, **destination}]}
    proc, port, config = appliance(sections)
    assert queue_cli(config, "hold", peer["name"]).returncode == 0
    return port, config


def test_twenty_good_instances_arrive_in_orthanc_beside_a_stored_file_that_cannot_be_read(
        appliance, orthanc, tmp_path):
    port, config = held_destination(appliance, orthanc.peer())
    [original] = make_study(tmp_path / "bad", 1)
    bad_uid = store_directly(tmp_path / "data", truncated_copy(original, tmp_path / "cut"),
                             "pacs")
    good = make_study(tmp_path / "good", 20)
    assert storescu(port, good).returncode == 0
    wait_until(lambda: queue_json(config)["pacs"]["pending"] == 21, 10, what="21 queued")

    assert queue_cli(config, "release", "pacs").returncode == 0
    # The damaged file is first in the batch: it is not sent at all (the native sender reads
    # it before anything goes out), fails with the reason, and the 20 behind it go out at once.
    wait_until(lambda: sorted(orthanc.sop_instance_uids()) == uids(good), 30,
               what="the 20 good instances in Orthanc")
    status = wait_until(lambda: (s := queue_json(config)["pacs"])["done"] == 20 and s, 10)
    assert status["pending"] == 0 and status["failed"] == 1, status
    assert bad_uid not in orthanc.sop_instance_uids()
    shown = queue_cli(config).stdout
    assert bad_uid in shown and "cannot be read" in shown, shown

    # Instances stored later are not held up behind it.
    later = make_study(tmp_path / "later", 3)
    assert storescu(port, later).returncode == 0
    wait_until(lambda: sorted(orthanc.sop_instance_uids()) == uids(good + later), 15,
               what="later instances in Orthanc")


class PickyPacs:
    """A pynetdicom Storage SCP on 127.0.0.1 that aborts the association when it receives
    `abort_uid`, answers 0xA700 (out of resources) for `refuse_uid` and only after
    `hang_seconds` for `hang_uid`, or stops reading for `hang_seconds` once an association has
    brought `stall_after_bytes`; it records what arrived on each association."""

    def __init__(self, abort_uid: str = "", refuse_uid: str = "", abort_all: bool = False,
                 hang_uid: str = "", hang_seconds: float = 0.0, stall_after_bytes: int = 0):
        self.abort_uid, self.refuse_uid, self.abort_all = abort_uid, refuse_uid, abort_all
        self.hang_uid, self.hang_seconds = hang_uid, hang_seconds
        self.stall_after_bytes = stall_after_bytes
        self.port = free_port()
        self.stored: list[str] = []
        self.associations: dict[object, list[str]] = {}  # association: UIDs it carried
        self.bytes_in: dict[object, int] = {}  # association: bytes read from it
        self.lock = threading.Lock()
        ae = AE(ae_title="PICKY")
        ae.add_supported_context(CTImageStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._on_store),
                                                    (evt.EVT_DATA_RECV, self._on_data)])

    def _on_data(self, event):
        """With `stall_after_bytes`: once an association has brought more, stop reading from
        it (this reader thread waits) for `hang_seconds`, as a destination that hangs in the
        middle of a large object; the sender's writes then block."""
        with self.lock:
            before = self.bytes_in.get(event.assoc, 0)
            self.bytes_in[event.assoc] = before + len(event.data)
        if self.stall_after_bytes and before <= self.stall_after_bytes < before + len(
                event.data):
            time.sleep(self.hang_seconds)

    def _on_store(self, event):
        uid = str(event.request.AffectedSOPInstanceUID)
        with self.lock:
            self.associations.setdefault(event.assoc, []).append(uid)
        if uid == self.abort_uid or self.abort_all:
            event.assoc.abort()
            return 0xC000
        if uid == self.hang_uid:  # answers only after the sender has given up
            time.sleep(self.hang_seconds)
            return 0xA700
        if uid == self.refuse_uid:
            return 0xA700
        with self.lock:
            self.stored.append(uid)
        return 0x0000

    def peer(self) -> dict:
        return {"name": "picky", "ae_title": "PICKY", "host": "127.0.0.1", "port": self.port}

    def received(self) -> list[str]:
        with self.lock:
            return sorted(self.stored)

    def tries_of(self, uid: str) -> list[list[str]]:
        """The instances of every association that carried `uid`, in order."""
        with self.lock:
            return [list(uids) for uids in self.associations.values() if uid in uids]

    def association_count(self) -> int:
        with self.lock:
            return len(self.associations)

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def picky_pacs():
    pacs: list[PickyPacs] = []

    def start(**uids) -> PickyPacs:
        pacs.append(PickyPacs(**uids))
        return pacs[-1]

    yield start
    for server in pacs:
        server.close()


def test_an_abort_isolates_the_instance_in_flight_and_a_failure_status_fails_only_its_own(
        appliance, picky_pacs, tmp_path):
    first, *good = make_study(tmp_path / "study", 22)
    refused, good = good[10], good[:10] + good[11:]
    abort_uid, refuse_uid = uids([first])[0], uids([refused])[0]
    pacs = picky_pacs(abort_uid=abort_uid, refuse_uid=refuse_uid)
    port, config = held_destination(appliance, pacs.peer())
    assert storescu(port, [first, *good[:10], refused, *good[10:]]).returncode == 0
    wait_until(lambda: queue_json(config)["picky"]["pending"] == 22, 10, what="22 queued")

    assert queue_cli(config, "release", "picky").returncode == 0
    wait_until(lambda: pacs.received() == uids(good), 30, what="the 20 good ones delivered")
    status = wait_until(lambda: (s := queue_json(config)["picky"])["done"] == 20 and s, 10)
    errors = {e["sop_instance_uid"]: e for e in status["instance_errors"]}
    assert set(errors) == {abort_uid, refuse_uid} and status["pending"] == 2
    assert errors[abort_uid]["isolated"]
    assert errors[abort_uid]["error"] == (f"picky (PICKY@127.0.0.1:{pacs.port}) aborted the "
                                          "association while receiving this instance")
    assert not errors[refuse_uid]["isolated"]  # a failure status does not hurt the others
    assert errors[refuse_uid]["error"].endswith("answered C-STORE status 0xA700")
    assert errors[refuse_uid]["next_attempt"] > time.time() + 60

    # The aborted one (first in the batch: nothing else went on that association) was then
    # sent alone, never in a batch again; the others went on a new association.
    tries = wait_until(lambda: len(t := pacs.tries_of(abort_uid)) >= 2 and t, 10,
                       what="the aborted instance tried alone")
    assert all(t == [abort_uid] for t in tries)
    error = wait_until(lambda: (e := {e["sop_instance_uid"]: e for e in queue_json(config)[
        "picky"]["instance_errors"]}[abort_uid])["attempts"] >= 2 and e, 10)
    assert error["next_attempt"] > time.time() + 60 and "this instance" in error["error"]
    shown = queue_cli(config).stdout
    assert abort_uid in shown and refuse_uid in shown and "0xA700" in shown

    later = make_study(tmp_path / "later", 3)
    assert storescu(port, later).returncode == 0
    wait_until(lambda: pacs.received() == uids(good + later), 10, what="later ones delivered")
    assert len(pacs.tries_of(abort_uid)) == len(tries)  # still waiting out its own backoff


def isolated_after_the_others(appliance, pacs: PickyPacs, first, good) -> tuple[dict, str]:
    """`first`, then `good`, queued for the held `pacs` and released: the good ones are
    delivered and `first` is the one instance error, isolated; (that error, the config)."""
    port, config = held_destination(appliance, pacs.peer())
    count = 1 + len(good)
    assert storescu(port, [first, *good]).returncode == 0
    wait_until(lambda: queue_json(config)["picky"]["pending"] == count, 10,
               what=f"{count} queued")
    assert queue_cli(config, "release", "picky").returncode == 0
    wait_until(lambda: pacs.received() == uids(good), 30, what="the others delivered")
    status = wait_until(lambda: (s := queue_json(config)["picky"])["done"] == len(good) and s,
                        10)
    [error] = status["instance_errors"]
    assert error["sop_instance_uid"] == uids([first])[0] and error["isolated"]
    return error, config


def test_an_instance_the_destination_does_not_answer_is_sent_alone_after_the_others(
        appliance, picky_pacs, tmp_path):
    first, *good = make_study(tmp_path / "study", 11)
    hang_uid = uids([first])[0]
    pacs = picky_pacs(hang_uid=hang_uid, hang_seconds=5)  # the destination's timeout: 3 s
    error, config = isolated_after_the_others(appliance, pacs, first, good)
    assert error["error"] == (f"picky (PICKY@127.0.0.1:{pacs.port}) did not answer the C-STORE "
                              "of this instance within 3 s")
    # Tried alone once more (nothing else on its association), it waits out its own backoff.
    error = wait_until(lambda: (e := queue_json(config)["picky"]["instance_errors"][0])
                       ["attempts"] >= 2 and e, 20, what="a second attempt, alone")
    assert error["next_attempt"] > time.time() + 60
    assert all(t == [hang_uid] for t in pacs.tries_of(hang_uid)[1:])
    shown = queue_cli(config).stdout
    assert hang_uid in shown and "sent alone" in shown


def test_an_instance_the_destination_stops_taking_is_sent_alone_after_the_others(
        appliance, picky_pacs, tmp_path):
    [large] = make_study(tmp_path / "large", 1, rows=4096, columns=4096)  # 32 MB of pixels
    # Reading stops for 20 s once 2 MB of an association have come (the socket buffers then
    # fill up); the destination's timeout is 3 s, DCMTK's own send timeout 60 s.
    pacs = picky_pacs(stall_after_bytes=2_000_000, hang_seconds=20)
    error, _ = isolated_after_the_others(appliance, pacs, large,
                                         make_study(tmp_path / "study", 10))
    assert error["error"] == (f"picky (PICKY@127.0.0.1:{pacs.port}) took no data of this "
                              "instance for 3 s")


def test_a_queue_database_of_the_previous_firmware_is_migrated_with_its_rows_kept(tmp_path):
    old = Database.in_data_dir(tmp_path)
    old.migrate([m for m in MIGRATIONS if m.version == 1])  # what the previous firmware made
    with old.transaction() as conn:
        instance = conn.execute(
            "INSERT INTO instances (sop_instance_uid, sop_class_uid, calling_aet, "
            "transfer_syntax, size, path, received_at) VALUES ('1.2.3', '1.2.840.10008.5.1.4.1."
            "1.2', 'CT', '1.2.840.10008.1.2.1', 10, 'a/1.2.3.dcm', 1)").lastrowid
        conn.execute("INSERT INTO forward_queue (instance_id, destination, enqueued_at, "
                     "attempts, last_error) VALUES (?, 'pacs', 1, 3, 'answered C-STORE status "
                     "0xA700')", (instance,))
    old.close()

    db = open_database(tmp_path)
    queue = ForwardQueue(db)
    [item] = queue.due("pacs", 10)
    assert (item.sop_instance_uid, item.attempts, item.isolated) == ("1.2.3", 3, False)
    errors, total = queue.instance_errors("pacs")
    assert total == 1 and errors[0].error == "answered C-STORE status 0xA700"
    queue.mark_isolated("pacs", instance, "aborted")
    assert queue.due("pacs", 10) == [] and queue.due("pacs", 10, isolated=True)[0].isolated
    db.close()


def test_a_destination_that_aborts_everything_backs_off_as_a_whole(appliance, picky_pacs,
                                                                    tmp_path):
    pacs = picky_pacs(abort_all=True)
    port, config = held_destination(appliance, pacs.peer(), retry_initial=30, retry_max=60)
    assert storescu(port, make_study(tmp_path / "study", 10)).returncode == 0
    wait_until(lambda: queue_json(config)["picky"]["pending"] == 10, 10, what="10 queued")
    assert queue_cli(config, "release", "picky").returncode == 0
    wait_until(lambda: queue_json(config)["picky"]["next_attempt"] > time.time(), 15,
               what="the destination backing off")
    assert "retry in" in queue_cli(config).stdout
    assert "3 associations in a row ended before anything was accepted" in (
        tmp_path / "appliance0.log").read_text()
    time.sleep(3)  # backing off: no more associations, instances sent alone included
    tried = pacs.association_count()
    time.sleep(3)
    assert pacs.association_count() == tried <= 6
    assert pacs.received() == [] and queue_json(config)["picky"]["pending"] == 10
