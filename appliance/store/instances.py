"""The instance store: received DICOM files under `<data_dir>/instances/` and their index in
the shared SQLite database, with the forward queue rows created in the same transaction.

Durability order for every C-STORE: the data set is already complete in a temp file in
`instances/.incoming/` (same file system); here it is renamed into place, then the file's data
and the directory entries are made durable, and only then is the index row (plus one queue row
per destination) committed. A Success status is sent only after that commit. Commits go through
one writer thread that groups concurrent stores into one transaction (group commit), which also
keeps SQLite connections off the DICOM engine's association threads.

Making a group's files durable costs one journal commit, not two per file: on Linux >= 5.8 one
`syncfs(2)` on the instances file system writes every file's data, the renames and any new
directory and waits for the disk (and reports writeback errors); elsewhere each file and each
touched directory is fsynced. The index COMMIT (synchronous=FULL) is the second and last flush,
so an index row never becomes durable before its file. A file that replaces a stored copy (the
`replace` duplicate policy) is fsynced before the rename, so a crash can never leave the old,
acknowledged copy replaced by a partial one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import platform
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from appliance.core.errors import ApplianceError
from appliance.store import coercion_tables, commitment_tables
from appliance.store.database import Database, Migration
from appliance.store.queue import MIGRATIONS as FORWARD_MIGRATIONS
from appliance.system import disk_usage
from appliance.system.atomic_file import fsync_directory

log = logging.getLogger(__name__)

INSTANCES_DIR = "instances"
INCOMING_DIR = ".incoming"

MIGRATIONS = [
    Migration("storage", 1, """
CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL DEFAULT '',
    series_uid TEXT NOT NULL DEFAULT '',
    patient_id TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    calling_aet TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    size INTEGER NOT NULL,
    path TEXT NOT NULL,
    received_at REAL NOT NULL,
    received_count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX instances_study ON instances (study_uid);
CREATE INDEX instances_received ON instances (received_at);
"""),
    # the forward queue's tables (appliance/store/queue.py owns them)
    *FORWARD_MIGRATIONS,
    # Storage Commitment's transactions and content hashes (retention reads them)
    *commitment_tables.MIGRATIONS,
    # De-identification's UID map (forward routes with deidentify = true)
    *coercion_tables.MIGRATIONS,
]


class StoreError(ApplianceError, OSError):
    """An instance could not be stored durably."""


def open_database(data_dir: Path) -> Database:
    """The shared database with the storage and forward tables in place."""
    db = Database.in_data_dir(Path(data_dir))
    db.migrate(MIGRATIONS)
    return db


@dataclass(frozen=True)
class InstanceMeta:
    """What the index records about one received instance."""

    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    patient_name: str
    modality: str
    calling_aet: str
    transfer_syntax: str
    accession_number: str = ""  # not indexed here: told to the worklist (study arrival)


@dataclass(frozen=True)
class StoreOutcome:
    """What `InstanceStore.commit` did: 'stored', 'replaced' or 'duplicate' (kept the first)."""

    action: str
    instance_id: int
    path: Path
    #: the content hash given to `commit` was recorded for this copy (Storage Commitment)
    content_hashed: bool = False


_SAFE_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def file_name_for(uid: str) -> str:
    """A file system name for a UID: the UID itself when it is a proper one, else a hash
    (a UID from the wire must never become a path like '../x')."""
    if uid and len(uid) <= 64 and _SAFE_UID.fullmatch(uid):
        return uid
    return "x" + hashlib.sha1(uid.encode("utf-8", "replace")).hexdigest()


def _load_syncfs():
    """syncfs(2) when it reports writeback errors (Linux >= 5.8), else None."""
    if platform.system() != "Linux":
        return None
    try:
        major, minor = (int(part) for part in platform.release().split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < (5, 8):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int
    return call


_syncfs = _load_syncfs()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Durability:
    """What a group of jobs wrote and must be durable before the group's COMMIT."""

    def __init__(self, root: Path | None = None, root_fd: int | None = None):
        self.root, self.root_fd = root, root_fd
        self.files: list[Path] = []
        self.dirs: set[Path] = set()

    def add(self, directory: Path) -> None:  # a set-like `add`: older jobs pass directories
        self.dirs.add(directory)

    def _under_root(self, path: Path) -> bool:
        # a string prefix: Path.parents builds a Path per level, on every file of every group
        root, text = os.fspath(self.root), os.fspath(path)
        return text == root or text.startswith(root.rstrip("/") + "/")

    def flush(self) -> None:
        if not self.files and not self.dirs:
            return
        if _syncfs is not None and self.root_fd is not None and all(
                self._under_root(p) for p in (*self.files, *self.dirs)):
            if _syncfs(self.root_fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"syncfs: {os.strerror(code)}")
            return
        for path in self.files:
            fsync_path(path)
        for directory in self.dirs:
            fsync_directory(directory)


class IndexWriter:
    """One thread applying store jobs in grouped transactions.

    A job is a function of (connection, durability: Durability) run inside a SAVEPOINT; files
    it lists in `durability.files` and directories it adds with `durability.add()` are made
    durable (one syncfs, or fsyncs) before the group's COMMIT. Each caller waits on a Future
    for its own job's result (or exception).
    """

    def __init__(self, db: Database, max_group: int = 64, root: Path | None = None):
        self.db = db
        self.root = root
        self._root_fd: int | None = None
        if root is not None and _syncfs is not None:
            self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        self.max_group = max_group
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable) -> Future:
        future: Future = Future()
        self._jobs.put((job, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                self._close()
                return
            group = [first]
            stop = False
            while len(group) < self.max_group:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._apply(group)
            if stop:
                self._close()
                return

    def _close(self) -> None:
        self.db.close()
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None

    def _apply(self, group: list) -> None:
        results: list = []
        # A group of one (every image of a single association) needs no SAVEPOINT: its
        # job's failure rolls back the whole transaction, which holds nothing else.
        alone = len(group) == 1
        try:
            conn = self.db.connection()
            durable = Durability(self.root, self._root_fd)
            conn.execute("BEGIN IMMEDIATE")
            try:
                for job, _future in group:
                    if not alone:
                        conn.execute("SAVEPOINT job")
                    try:
                        results.append((True, job(conn, durable)))
                        if not alone:
                            conn.execute("RELEASE job")
                    except Exception as exc:  # this job fails, the others go on
                        conn.execute("ROLLBACK" if alone else "ROLLBACK TO job")
                        if not alone:
                            conn.execute("RELEASE job")
                        results.append((False, exc))
                durable.flush()
                if conn.in_transaction:
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            log.error("index commit failed: %s", exc)
            for _job, future in group:
                failure = StoreError(f"index commit failed: {exc}")
                failure.__cause__ = exc  # e.g. SQLITE_FULL: the caller answers 0xA700
                future.set_exception(failure)
            return
        for (_job, future), (ok, value) in zip(group, results, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class InstanceStore:
    """Files under `<data_dir>/instances/<study>/<sop instance>.dcm` plus their index."""

    def __init__(self, data_dir: Path, db: Database | None = None):
        self.data_dir = Path(data_dir).absolute()
        self.root = self.data_dir / INSTANCES_DIR
        self.incoming = self.root / INCOMING_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(exist_ok=True)
        self.db = db or open_database(self.data_dir)
        self.writer = IndexWriter(self.db, root=self.root)

    def close(self) -> None:
        self.writer.close()

    def clear_incoming(self) -> int:
        """Remove partial receptions left by a crash (none of them was ever acknowledged)."""
        removed = 0
        for entry in self.incoming.iterdir():
            try:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError as exc:
                log.warning("cannot remove leftover %s: %s", entry, exc)
        if removed:
            log.info("removed %d partial receptions from %s", removed, self.incoming)
        return removed

    def free_bytes(self) -> int:
        fs = os.statvfs(self.root)
        return fs.f_bavail * fs.f_frsize

    def used_percent(self) -> float:
        """Percent of the data partition in use, as `df` reports it."""
        return disk_usage.used_percent(self.root)

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def latest_study_from(self, calling_aet: str, since: float) -> tuple[str, str] | None:
        """(Study Instance UID, file path relative to the store) of the newest instance a
        calling AE stored with a study UID since `since`, or None."""
        row = self.db.connection().execute(
            "SELECT study_uid, path FROM instances WHERE calling_aet = ? AND study_uid != '' "
            "AND received_at >= ? ORDER BY received_at DESC, id DESC LIMIT 1",
            (calling_aet, since)).fetchone()
        return (row["study_uid"], row["path"]) if row is not None else None

    def commit(self, temp_path: Path, meta: InstanceMeta, destinations: list[str],
               duplicates: str, timeout: float = 60.0,
               content_hash: tuple[int, str] | None = None) -> StoreOutcome:
        """Move a complete temp file into place and index it (with its queue rows).

        Returns when the file and its index row are durable. With `duplicates ==
        'keep_first'` a known SOP Instance UID leaves the stored copy alone and the temp file is
        removed by the caller. `content_hash` (size, SHA-256 hex) of the temp file, when its
        writer took one, is recorded for the copy kept, in the same transaction.
        """
        study_dir = file_name_for(meta.study_uid) if meta.study_uid else "unknown-study"
        relative = f"{study_dir}/{file_name_for(meta.sop_instance_uid)}.dcm"
        final = self.root / relative
        size = temp_path.stat().st_size

        def job(conn, durable: Durability):
            now = time.time()
            row = conn.execute("SELECT id, path FROM instances WHERE sop_instance_uid = ?",
                               (meta.sop_instance_uid,)).fetchone()
            if row is not None and duplicates == "keep_first":
                conn.execute("UPDATE instances SET received_count = received_count + 1 "
                             "WHERE id = ?", (row["id"],))
                return StoreOutcome("duplicate", row["id"], self.root / row["path"])
            replacing = False
            if not final.parent.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                durable.add(self.root)
            elif final.exists():
                replacing = True
                fsync_path(temp_path)  # never replace a stored copy by an unflushed one
            if not replacing:
                placed.append(final)  # removed again if the index row is not committed
            os.rename(temp_path, final)
            durable.files.append(final)
            durable.add(final.parent)
            values = (meta.sop_class_uid, meta.study_uid, meta.series_uid, meta.patient_id,
                      meta.patient_name, meta.modality, meta.calling_aet, meta.transfer_syntax,
                      size, relative, now)
            if row is None:
                instance_id = conn.execute(
                    "INSERT INTO instances (sop_class_uid, study_uid, series_uid, patient_id, "
                    "patient_name, modality, calling_aet, transfer_syntax, size, path, "
                    "received_at, sop_instance_uid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*values, meta.sop_instance_uid)).lastrowid
                action = "stored"
            else:
                instance_id = row["id"]
                conn.execute(
                    "UPDATE instances SET sop_class_uid=?, study_uid=?, series_uid=?, "
                    "patient_id=?, patient_name=?, modality=?, calling_aet=?, "
                    "transfer_syntax=?, size=?, path=?, received_at=?, "
                    "received_count = received_count + 1 WHERE id=?", (*values, instance_id))
                # The new version goes out again to every destination it is routed to.
                conn.execute("DELETE FROM forward_queue WHERE instance_id = ?", (instance_id,))
                if row["path"] != relative:
                    old = self.root / row["path"]
                    conn_after.append(old)
                action = "replaced"
            conn.executemany(
                "INSERT INTO forward_queue (instance_id, destination, enqueued_at) "
                "VALUES (?, ?, ?)", [(instance_id, d, now) for d in destinations])
            hashed = content_hash is not None and content_hash[0] == size
            if hashed:
                commitment_tables.record_hash(conn, instance_id, now, *content_hash)
            return StoreOutcome(action, instance_id, final, hashed)

        conn_after: list[Path] = []
        placed: list[Path] = []
        future = self.writer.submit(job)
        try:
            outcome = future.result(timeout)
        except OSError as exc:
            # Once the group has failed (not merely a timeout), a file moved into place is
            # neither acknowledged nor indexed: it is not kept.
            for orphan in placed if future.done() else ():
                try:
                    orphan.unlink()
                except OSError:
                    pass
            raise StoreError(f"cannot store {meta.sop_instance_uid}: {exc}") from exc
        for old in conn_after:  # the replaced copy lived under another study folder
            try:
                old.unlink()
            except OSError:
                pass
        return outcome

    def delete(self, instance_id: int, relative: str) -> None:
        """Remove one instance: index row first (its queue rows go with it), then the file,
        so a crash in between leaves at worst an unindexed file, never a row without one."""
        def job(conn, dirs):
            conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))
        self.writer.submit(job).result(60)
        try:
            (self.root / relative).unlink()
        except FileNotFoundError:
            pass
