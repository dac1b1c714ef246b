"""The durable write path's parts: the flush before an index commit (a replaced copy is
flushed before its rename) and the fallback to fsyncs outside the data root. (The native
engine writes each received file; tests/dicom/engine/test_engine_store.py covers that part.)"""

from __future__ import annotations

import os
import threading

from appliance.store import instances
from appliance.store.instances import InstanceMeta, InstanceStore


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


def test_a_group_of_one_needs_no_savepoint_and_a_failing_job_leaves_nothing(tmp_path):
    store = InstanceStore(tmp_path)
    writer = store.writer
    statements: list[str] = []
    try:
        writer.submit(lambda conn, _d: conn.execute("CREATE TABLE t (x)")).result(10)
        writer.submit(lambda conn, _d: conn.set_trace_callback(statements.append)).result(10)
        temp = store.incoming / "one.tmp"
        temp.write_bytes(b"one")
        assert store.commit(temp, meta("1.2.3.7"), [], "keep_first").action == "stored"

        def failing(conn, _durable):
            conn.execute("INSERT INTO t VALUES (1)")
            raise ValueError("job failed")
        failed = writer.submit(failing)
        assert isinstance(failed.exception(10), ValueError)
        writer.submit(lambda conn, _d: conn.execute("INSERT INTO t VALUES (2)")).result(10)
        rows = writer.submit(lambda conn, _d: conn.execute("SELECT x FROM t").fetchall())
        assert [tuple(r) for r in rows.result(10)] == [(2,)]
        assert not any("SAVEPOINT" in s.upper() for s in statements)
        assert store.db.connection().execute(
            "SELECT count(*) FROM instances WHERE sop_instance_uid='1.2.3.7'").fetchone()[0] == 1
    finally:
        writer.submit(lambda conn, _d: conn.set_trace_callback(None)).result(10)
        store.close()


def test_in_a_group_of_several_a_failing_job_fails_alone(tmp_path):
    store = InstanceStore(tmp_path)
    writer = store.writer
    try:
        writer.submit(lambda conn, _d: conn.execute("CREATE TABLE t (x)")).result(10)
        release = threading.Event()
        blocker = writer.submit(lambda conn, _d: release.wait(10))

        def insert(value, fail=False):
            def job(conn, _durable):
                conn.execute("INSERT INTO t VALUES (?)", (value,))
                if fail:
                    raise ValueError("job failed")
                return value
            return job
        futures = [writer.submit(insert(1)), writer.submit(insert(2, fail=True)),
                   writer.submit(insert(3))]
        release.set()  # the three wait behind the blocker: one group
        blocker.result(10)
        assert futures[0].result(10) == 1 and futures[2].result(10) == 3
        assert isinstance(futures[1].exception(10), ValueError)
        rows = writer.submit(lambda conn, _d: conn.execute("SELECT x FROM t ORDER BY x")
                             .fetchall()).result(10)
        assert [tuple(r) for r in rows] == [(1,), (3,)]
    finally:
        store.close()
