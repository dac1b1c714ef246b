"""Per-minute statistics for the landing page's plots, `GET /api/v1/stats` and `/metrics`:
images received and forwarded per minute, queue depth per destination, disk use.

A sampler thread of the web component looks once a minute (never on the C-STORE path): it
counts the instances indexed and the queue rows delivered per minute from the database
(`instances.received_at`, `forward_queue.done_at`), re-counting the current and the previous
minute each time (so a late commit still lands in its minute), reads the queue depths and the
disk, and writes them into `stats_minute` in the shared database. Buckets older than
`RETENTION_DAYS` are pruned on each pass. Between passes, on each of its ticks (5 s), it
re-counts the current and the previous minute and writes the counts that changed (nothing on
an idle box).

Readers (the landing page, GET /api/v1/stats, /metrics) only read: the stored buckets, with
the current minute's queue depths and disk use read live and not stored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.store.database import Database, Migration

log = logging.getLogger(__name__)

OWNER = "web_stats"
RETENTION_DAYS = 7
MAX_MINUTES = RETENTION_DAYS * 24 * 60
DEFAULT_MINUTES = 24 * 60
#: Series counted per minute (sums); the others (queue_depth, disk_used_percent) are sampled.
COUNTED = ("received", "forwarded")

MIGRATIONS = [Migration(OWNER, 1, """
CREATE TABLE stats_minute (
    series TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    minute INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series, label, minute)
) WITHOUT ROWID;
CREATE INDEX stats_minute_minute ON stats_minute (minute);
""")]


@dataclass(frozen=True)
class Sample:
    """What the sampler reads besides the database counts: queue depth per destination and
    the data disk's use in percent (None: unknown)."""

    queue_depth: dict[str, int]
    disk_used_percent: float | None


class StatsStore:
    """The `stats_minute` table: write buckets, read series, prune."""

    def __init__(self, db: Database):
        self.db = db
        db.migrate(MIGRATIONS)

    def put(self, rows: list[tuple[str, str, int, float]]) -> None:
        """(series, label, minute, value) rows. A count written again keeps the larger value
        (retention may have deleted rows a first count saw); a sample takes the new one."""
        if not rows:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO stats_minute (series, label, minute, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (series, label, minute) DO UPDATE SET value = CASE WHEN "
                f"series IN {COUNTED!r} THEN max(value, excluded.value) ELSE excluded.value "
                "END", rows)

    def prune(self, before_minute: int) -> int:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM stats_minute WHERE minute < ?",
                                (before_minute,)).rowcount

    def rows(self, first_minute: int, last_minute: int) -> list[sqlite3.Row]:
        return self.db.connection().execute(
            "SELECT series, label, minute, value FROM stats_minute WHERE minute BETWEEN ? AND ? "
            "ORDER BY series, label, minute", (first_minute, last_minute)).fetchall()

    def total_since(self, series: str, first_minute: int) -> int:
        row = self.db.connection().execute(
            "SELECT COALESCE(SUM(value), 0) FROM stats_minute WHERE series = ? AND minute >= ?",
            (series, first_minute)).fetchone()
        return int(row[0])

    def latest(self, series: str, minute: int) -> dict[str, float]:
        """{label: value} of one series in one minute."""
        return {row[0]: row[1] for row in self.db.connection().execute(
            "SELECT label, value FROM stats_minute WHERE series = ? AND minute = ?",
            (series, minute))}

    def series(self, minutes: int, now: float | None = None) -> dict:
        """The last `minutes` minutes (ending with the current one) as dense lists, one value
        per minute: counts are 0 where nothing happened, samples None where none was taken."""
        minutes = max(1, min(int(minutes), MAX_MINUTES))
        last = int((time.time() if now is None else now) // 60)
        first = last - minutes + 1
        out: dict = {"step_seconds": 60, "start": first * 60, "minutes": minutes,
                     "received": [0] * minutes, "forwarded": {}, "queue_depth": {},
                     "disk_used_percent": [None] * minutes}
        for series, label, minute, value in self.rows(first, last):
            i = minute - first
            if series == "received":
                out["received"][i] = int(value)
            elif series == "forwarded":
                out["forwarded"].setdefault(label, [0] * minutes)[i] = int(value)
            elif series == "queue_depth":
                out["queue_depth"].setdefault(label, [None] * minutes)[i] = int(value)
            elif series == "disk_used_percent":
                out["disk_used_percent"][i] = value
        return out


def count_per_minute(db: Database, since_minute: int) -> list[tuple[str, str, int, float]]:
    """Images indexed and queue rows delivered per minute since `since_minute`, from the
    storage and forward tables (none yet: nothing counted)."""
    since = since_minute * 60
    conn = db.connection()
    rows: list[tuple[str, str, int, float]] = []
    queries = (
        ("received", "SELECT '', CAST(received_at / 60 AS INTEGER) AS m, COUNT(*) FROM instances "
                     "WHERE received_at >= ? GROUP BY m"),
        ("forwarded", "SELECT destination, CAST(done_at / 60 AS INTEGER) AS m, COUNT(*) FROM "
                      "forward_queue WHERE state = 'done' AND done_at >= ? "
                      "GROUP BY destination, m"),
    )
    for series, sql in queries:
        try:
            found = conn.execute(sql, (since,)).fetchall()
        except sqlite3.OperationalError as exc:  # the storage component has not created it
            log.debug("no %s counts yet: %s", series, exc)
            continue
        rows += [(series, label, int(minute), float(n)) for label, minute, n in found]
    return rows


class StatsSampler:
    """The once-a-minute pass and the counts' refresh between passes, in its own thread;
    `series()` for readers, who never write."""

    def __init__(self, db: Database, read: Callable[[], Sample], interval: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 tick: Callable[[], object] | None = None, tick_interval: float = 5.0):
        self.db = db
        #: Also called every `tick_interval` seconds in the sampler's thread (the association
        #: history's flush).
        self.tick = tick
        self.tick_interval = tick_interval
        self.store = StatsStore(db)
        self.read = read
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._written: dict[tuple[str, str, int], float] = {}  # counts as last stored

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="web-stats", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        due = 0.0
        while not self._stop.is_set():
            try:
                if self.tick is not None:
                    self.tick()
                if time.monotonic() >= due:
                    due = time.monotonic() + self.interval
                    self.sample()
                else:
                    self.refresh_counts()
            except Exception:
                log.exception("statistics pass failed")
            self._stop.wait(min(self.tick_interval, self.interval))

    def sample(self) -> None:
        with self._lock:
            now = self.clock()
            minute = int(now // 60)
            # The first pass after a start fills in the last 24 h from the tables.
            first = not self._started
            self._started = True
            counts = count_per_minute(self.db, minute - (DEFAULT_MINUTES if first else 1))
            sample = self.read()
            rows = counts + [("queue_depth", name, minute, float(depth))
                             for name, depth in sample.queue_depth.items()]
            if sample.disk_used_percent is not None:
                rows.append(("disk_used_percent", "", minute, sample.disk_used_percent))
            self.store.put(rows)
            self.store.prune(minute - MAX_MINUTES)
            self._written = {row[:3]: row[3] for row in counts}

    def refresh_counts(self) -> None:
        """Store the current and the previous minute's counts where they changed."""
        with self._lock:
            counts = count_per_minute(self.db, int(self.clock() // 60) - 1)
            changed = [row for row in counts if self._written.get(row[:3]) != row[3]]
            if changed:
                self.store.put(changed)
                self._written = {row[:3]: row[3] for row in counts}

    def series(self, minutes: int) -> dict:
        """`StatsStore.series` with the current minute's queue depths and disk use read now
        (not stored): what the plots and GET /api/v1/stats show. Reads only."""
        out = self.store.series(minutes, self.clock())
        sample = self.read()
        for name, depth in sample.queue_depth.items():
            out["queue_depth"].setdefault(name, [None] * out["minutes"])[-1] = depth
        if sample.disk_used_percent is not None:
            out["disk_used_percent"][-1] = sample.disk_used_percent
        return out

    def last_minute(self) -> dict[str, object]:
        """The last complete minute's counts: {"received": n, "forwarded": {dest: n}}."""
        minute = int(self.clock() // 60) - 1
        return {"received": int(self.store.latest("received", minute).get("", 0)),
                "forwarded": {k: int(v) for k, v in
                              self.store.latest("forwarded", minute).items()}}

