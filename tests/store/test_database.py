"""The shared SQLite database: WAL, per-thread connections, per-component migrations."""

from __future__ import annotations

import threading

import pytest

from appliance.store import Database, DatabaseError, Migration

MIGRATIONS = [
    Migration("things", 1, "CREATE TABLE thing (id INTEGER PRIMARY KEY, name TEXT);"),
    Migration("things", 2, "ALTER TABLE thing ADD COLUMN size INTEGER;\n"
                           "CREATE INDEX thing_name ON thing (name);"),
]


def test_migrations_apply_once_and_in_order(tmp_path):
    db = Database.in_data_dir(tmp_path)
    db.migrate(list(reversed(MIGRATIONS)))
    db.migrate(MIGRATIONS)
    rows = db.connection().execute(
        "SELECT owner, version FROM schema_migrations ORDER BY version").fetchall()
    assert [tuple(r) for r in rows] == [("things", 1), ("things", 2)]
    assert db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_failed_migration_leaves_nothing_half_done(tmp_path):
    db = Database(tmp_path / "x.sqlite3")
    bad = Migration("bad", 1, "CREATE TABLE a (x);\nCREATE TABLE a (y);")
    with pytest.raises(DatabaseError, match="migration bad 1 failed"):
        db.migrate([bad])
    tables = db.connection().execute(
        "SELECT name FROM sqlite_master WHERE name='a'").fetchall()
    assert tables == []


def test_each_thread_gets_its_own_connection_and_sees_committed_rows(tmp_path):
    db = Database(tmp_path / "x.sqlite3")
    db.migrate(MIGRATIONS)
    with db.transaction() as tx:
        tx.execute("INSERT INTO thing (name) VALUES ('a')")
    seen = []

    def reader():
        seen.append(db.connection().execute("SELECT count(*) FROM thing").fetchone()[0])
        seen.append(db.connection() is not main)

    main = db.connection()
    t = threading.Thread(target=reader)
    t.start()
    t.join()
    assert seen == [1, True]


def test_transaction_rolls_back_on_error(tmp_path):
    db = Database(tmp_path / "x.sqlite3")
    db.migrate(MIGRATIONS)
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO thing (name) VALUES ('a')")
            raise RuntimeError("boom")
    assert db.connection().execute("SELECT count(*) FROM thing").fetchone()[0] == 0


def test_connections_of_ended_threads_are_closed(tmp_path):
    # pynetdicom runs each association in its own thread: connections must not pile up.
    db = Database(tmp_path / "x.sqlite3")
    db.migrate(MIGRATIONS)

    def use():
        db.connection().execute("SELECT count(*) FROM thing").fetchone()

    for _ in range(20):
        t = threading.Thread(target=use)
        t.start()
        t.join()
    assert db.open_connections <= 2  # this thread's and at most the last ended thread's
    db.close()
    assert db.open_connections == 0
