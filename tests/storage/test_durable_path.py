"""The durable write path's parts: the flush before an index commit (a replaced copy is
flushed before its rename) and the fallback to fsyncs outside the data root. (The native
engine writes each received file; tests/dicom/engine/test_engine_store.py covers that part.)"""

from __future__ import annotations

import os

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
