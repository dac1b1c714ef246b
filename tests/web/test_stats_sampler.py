"""The statistics sampler: readers (the landing page, GET /api/v1/stats) never write to the
database; between its once-a-minute passes the sampler stores only the counts that changed."""

from __future__ import annotations

import sqlite3

from appliance.store.database import Database
from appliance.store.instances import MIGRATIONS as INSTANCE_MIGRATIONS
from appliance.web.stats import Sample, StatsSampler

NOW = 1_000_000 * 60 + 30.0   # half a minute into minute 1,000,000


def changes(path) -> int:
    """Rows and their sum in stats_minute, as another connection sees them."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*), SUM(value) FROM stats_minute").fetchone()


def store_instance(db: Database, number: int, at: float) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO instances (sop_instance_uid, sop_class_uid, calling_aet, "
                     "transfer_syntax, size, path, received_at) VALUES (?, '1.2', 'CT', "
                     "'1.2.840.10008.1.2', 1, 'x', ?)", (f"1.2.3.{number}", at))


def sampler(tmp_path, depth: dict[str, int]) -> tuple[StatsSampler, Database]:
    db = Database.in_data_dir(tmp_path)
    db.migrate(INSTANCE_MIGRATIONS)
    return StatsSampler(db, lambda: Sample(dict(depth), 42.5), clock=lambda: NOW), db


def test_a_reader_sees_the_current_minute_and_writes_nothing(tmp_path):
    depth = {"pacs": 2}
    stats, db = sampler(tmp_path, depth)
    store_instance(db, 1, NOW - 1)
    stats.sample()
    before = changes(db.path)
    store_instance(db, 2, NOW)
    depth["pacs"] = 7
    for _ in range(3):
        answer = stats.series(60)
    assert changes(db.path) == before
    assert answer["queue_depth"]["pacs"][-1] == 7          # read now, not stored
    assert answer["disk_used_percent"][-1] == 42.5
    assert sum(answer["received"]) == 1                    # the stored count until a tick


def test_between_passes_only_changed_counts_are_stored(tmp_path):
    stats, db = sampler(tmp_path, {"pacs": 0})
    store_instance(db, 1, NOW - 1)
    stats.sample()
    stored = changes(db.path)
    stats.refresh_counts()
    assert changes(db.path) == stored                      # nothing new: nothing written
    store_instance(db, 2, NOW)
    stats.refresh_counts()
    count, _ = changes(db.path)
    assert count == stored[0]                              # the same bucket, now 2
    assert sum(stats.series(60)["received"]) == 2
