"""The durable write path's parts: the incoming file pynetdicom streams into, the flush before
an index commit (a replaced copy is flushed before its rename), and the reactor clock's
pass-through for threads that are not acceptor reactors."""

from __future__ import annotations

import os
import threading
import time

from appliance.dicom import pynetdicom_speedups
from appliance.dicom.storage_receive import WRITEBACK_CHUNK, IncomingFile
from appliance.store import instances
from appliance.store.instances import InstanceMeta, InstanceStore


def test_incoming_file_writes_every_fragment_unbuffered(tmp_path):
    incoming = IncomingFile(tmp_path)
    chunks = [os.urandom(1000), os.urandom(WRITEBACK_CHUNK + 5), b"", os.urandom(7)]
    for chunk in chunks:
        incoming.write(chunk)
        incoming.file.flush()
        assert os.path.getsize(incoming.name) == incoming.size  # on disk at once
    incoming.close()
    assert incoming.closed
    assert open(incoming.name, "rb").read() == b"".join(chunks)
    assert os.path.dirname(incoming.name) == str(tmp_path)


def meta(uid: str) -> InstanceMeta:
    return InstanceMeta(uid, "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.3.4", "P", "N", "CT",
                        "MOD", "1.2.840.10008.1.2.1")


def test_replacing_a_stored_copy_flushes_the_new_one_before_the_rename(tmp_path, monkeypatch):
    store = InstanceStore(tmp_path)
    flushed: list[str] = []
    real = instances.fsync_path
    monkeypatch.setattr(instances, "fsync_path",
                        lambda path: (flushed.append(os.path.basename(path)), real(path)))
    try:
        first = store.incoming / "first.tmp"
        first.write_bytes(b"first")
        outcome = store.commit(first, meta("1.2.3.9"), [], "replace")
        assert outcome.action == "stored" and "first.tmp" not in flushed
        second = store.incoming / "second.tmp"
        second.write_bytes(b"second")
        outcome = store.commit(second, meta("1.2.3.9"), [], "replace")
        assert outcome.action == "replaced"
        assert "second.tmp" in flushed  # fsynced under its temp name, i.e. before the rename
        assert outcome.path.read_bytes() == b"second"
    finally:
        store.close()


def test_durability_flush_falls_back_to_fsyncs_outside_the_root(tmp_path, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(instances, "fsync_path", lambda path: synced.append(str(path)))
    monkeypatch.setattr(instances, "fsync_directory", lambda path: synced.append(str(path)))
    outside = tmp_path / "elsewhere.dcm"
    outside.write_bytes(b"x")
    durable = instances.Durability(tmp_path / "root", None)
    durable.files.append(outside)
    durable.add(tmp_path)
    durable.flush()
    assert synced == [str(outside), str(tmp_path)]


def test_reactor_clock_sleeps_normally_outside_acceptor_reactors():
    pynetdicom_speedups.install()
    clock = pynetdicom_speedups.ReactorClock()
    assert clock.monotonic is time.monotonic
    took: list[float] = []

    def nap():
        start = time.monotonic()
        clock.sleep(0.02)
        took.append(time.monotonic() - start)

    worker = threading.Thread(target=nap)
    worker.start()
    worker.join()
    assert took[0] >= 0.019


def test_whole_pdu_reads_return_what_pynetdicom_expects():
    import socket

    from pynetdicom.transport import AssociationSocket

    left, right = socket.socketpair()
    holder = AssociationSocket.__new__(AssociationSocket)
    holder.socket = left
    payload = os.urandom(300_000)
    sender = threading.Thread(target=lambda: (right.sendall(payload[:1000]), time.sleep(0.05),
                                              right.sendall(payload[1000:]), right.close()))
    sender.start()
    try:
        got = pynetdicom_speedups.recv_whole(holder, 200_000)
        assert isinstance(got, bytearray) and got == payload[:200_000]
        rest = pynetdicom_speedups.recv_whole(holder, 500_000)  # the peer closes early
        assert rest == payload[200_000:]
    finally:
        sender.join()
        left.close()
