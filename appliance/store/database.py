"""The appliance's one SQLite database (WAL mode) under `<data_dir>/db/appliance.sqlite3`.

Each component owns its tables and declares them as numbered migrations under its own name;
`Database.migrate` applies the ones not yet applied, each in one transaction, and records them
in `schema_migrations`. Connections are per thread (SQLite objects must not cross threads),
with `synchronous=FULL` so a committed row survives a power cut. Threads come and go (SCU
associations, web requests, the engine's handler calls), so the connection of a thread that has
ended is closed the next time a connection is opened: the number of open connections follows
the number of live threads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from appliance.core.errors import ApplianceError

log = logging.getLogger(__name__)

FILENAME = "appliance.sqlite3"


class DatabaseError(ApplianceError, RuntimeError):
    """The database could not be opened or migrated."""


@dataclass(frozen=True)
class Migration:
    """One schema step of one component: `owner` names the component, `version` counts up
    from 1, `sql` is one or more statements."""

    owner: str
    version: int
    sql: str


class _ThreadOwner:
    """Kept in a thread's local data next to its connection: freed when the thread's Python
    state is, which closes the connection (`Database._thread_gone`)."""

    __slots__ = ("__weakref__",)


class Database:
    """Per-thread connections to one SQLite file."""

    def __init__(self, path: Path, busy_timeout: float = 30.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._open: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._lock = threading.RLock()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Database:
        return cls(Path(data_dir) / "db" / FILENAME)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                       isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise DatabaseError(f"cannot open database {self.path}: {exc}") from exc
            owner = _ThreadOwner()
            self._local.conn, self._local.owner = conn, owner
            with self._lock:
                self._close_dead_threads()
                self._open[id(conn)] = (threading.current_thread(), conn)
            weakref.finalize(owner, self._thread_gone, id(conn))
        return conn

    def _thread_gone(self, key: int) -> None:
        """The thread that opened a connection has ended (its thread-local data is freed):
        close the connection. This is how the connections of threads Python did not start
        (the native DICOM engine's) are closed: Python never sees those threads end."""
        with self._lock:
            entry = self._open.pop(key, None)
        if entry is not None:
            entry[1].close()

    def _close_dead_threads(self) -> None:
        for key, (thread, conn) in list(self._open.items()):
            if not thread.is_alive():
                conn.close()
                del self._open[key]

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on this thread's connection."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def migrate(self, migrations: list[Migration]) -> None:
        """Apply the migrations not yet applied, in version order per owner."""
        conn = self.connection()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "owner TEXT NOT NULL, version INTEGER NOT NULL, "
                     "applied_at TEXT NOT NULL DEFAULT (datetime('now')), "
                     "PRIMARY KEY (owner, version))")
        for migration in sorted(migrations, key=lambda m: (m.owner, m.version)):
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE owner=? AND version=?",
                                (migration.owner, migration.version)).fetchone()
            if done:
                continue
            try:
                with self.transaction() as tx:
                    for statement in _statements(migration.sql):
                        tx.execute(statement)
                    tx.execute("INSERT INTO schema_migrations (owner, version) VALUES (?, ?)",
                               (migration.owner, migration.version))
            except sqlite3.Error as exc:
                raise DatabaseError(f"migration {migration.owner} {migration.version} "
                                    f"failed on {self.path}: {exc}") from exc
            log.info("database %s: applied %s migration %d", self.path, migration.owner,
                     migration.version)

    def close(self) -> None:
        with self._lock:
            for _, conn in self._open.values():
                conn.close()
            self._open.clear()
        self._local = threading.local()


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows about strings and
    triggers)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
