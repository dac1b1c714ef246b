"""The floors benchmark measures what it says: the flush loop writes, renames, syncs and commits
every file (and leaves nothing behind), each interpreter step imports more than the one before,
and the targets' rows are computed from the measured figures. Speed is not asserted here."""

from __future__ import annotations

import sqlite3

import pytest

import bench.bench_floors as floors


def test_the_flush_loop_stores_and_commits_every_file(tmp_path, monkeypatch):
    monkeypatch.setattr(floors.shutil, "rmtree", lambda *a, **k: None)  # keep it to look at
    out = floors.flushes(tmp_path, b"x" * 4096, 5)
    assert {key: len(values) for key, values in out.items()} == \
        {"syncfs": 5, "commit": 5, "cpu": 5}
    assert all(value > 0 for value in out["syncfs"] + out["commit"])
    data = tmp_path / "flush-data"
    assert sorted(p.name for p in (data / "instances" / "1.2.3").iterdir()) == \
        [f"{n}.dcm" for n in range(5)]
    assert (data / "instances" / "1.2.3" / "0.dcm").read_bytes() == b"x" * 4096
    assert not list((data / "instances" / ".incoming").iterdir())
    db = sqlite3.connect(data / "index.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM instances").fetchone()[0] == 5
    finally:
        db.close()


def test_the_flush_loop_leaves_nothing_behind(tmp_path):
    floors.flushes(tmp_path, b"x", 2)
    assert not (tmp_path / "flush-data").exists()


def test_each_interpreter_step_imports_more():
    bare = floors.import_rss_mb(["pass"])
    with_pydicom = floors.import_rss_mb(["pass", "import pydicom"])
    assert 1 < bare < with_pydicom


def test_the_targets_rows_follow_the_figures():
    ms = 0.001
    text = floors.report(
        1, 300, b"x" * 525_000, scp_wall=[1 * ms], scp_cpu=[0.5 * ms], sync=[0.6 * ms],
        commit=[0.4 * ms], flush_cpu=[0.25 * ms], hashes=[0.25 * ms],
        rss={label: [10.0 + n] for n, (label, _) in enumerate(floors.IMPORT_STEPS)})
    assert "(its time + the two flushes) = 0.50x" in text  # 1 / (1 + 0.6 + 0.4)
    assert "on the association's thread 0.44x" in text  # 1 / (1 + 1 + 0.25)
    assert "the flushes' CPU = 1.50x; + the hash 2.00x" in text  # (0.5+0.25[+0.25]) / 0.5
    assert "up to the engine): 14.0 MB" in text and "imported: 16.0 MB" in text
    assert "| storescp: wall time | 1.00 (1.00–1.00) |" in text


@pytest.mark.parametrize("label", [label for label, _ in floors.IMPORT_STEPS])
def test_every_step_is_reported(label):
    text = floors.report(1, 1, b"x", [1e-3], [1e-3], [1e-3], [1e-3], [1e-3], [1e-3],
                         {lab: [1.0] for lab, _ in floors.IMPORT_STEPS})
    assert f"| {label} | 1.0 (1.0–1.0) |" in text
