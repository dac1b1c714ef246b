"""The DICOM associations history behind `/associations` and `GET /api/v1/associations`: every
`association` event of the bus (appliance.dicom.association_log) kept in the shared database,
newest first, searchable by calling AE title, outcome, service and time, and bounded (the
newest `KEEP_ROWS`, none older than `KEEP_DAYS`).

The bus subscriber only appends to a list (it runs on the DICOM engine's thread); the rows are
written by `flush()`, which the web component's statistics thread calls every few seconds and
every query calls first, so a search always sees the associations that have ended.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from appliance.core.event_topics import Topic
from appliance.core.events import Event, EventBus
from appliance.store.database import Database, Migration

log = logging.getLogger(__name__)

OWNER = "web_associations"
KEEP_ROWS = 10_000
KEEP_DAYS = 30
PAGE_SIZE = 50
#: The DIMSE services an association may have used (the service filter's choices).
SERVICES = ("C-ECHO", "C-STORE", "C-FIND", "C-MOVE", "C-GET", "N-CREATE", "N-SET", "N-GET",
            "N-ACTION", "N-EVENT-REPORT", "N-DELETE")
#: Outcome kinds (the first word of the outcome): the outcome filter's choices.
OUTCOMES = ("released", "aborted", "rejected", "refused", "closed")

MIGRATIONS = [Migration(OWNER, 1, """
CREATE TABLE association_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ended REAL NOT NULL,
    peer TEXT NOT NULL,
    calling_aet TEXT NOT NULL,
    called_aet TEXT NOT NULL,
    operations TEXT NOT NULL,
    services TEXT NOT NULL,
    duration REAL NOT NULL,
    outcome TEXT NOT NULL,
    outcome_kind TEXT NOT NULL
);
CREATE INDEX association_history_ended ON association_history (ended);
CREATE INDEX association_history_calling ON association_history (calling_aet, ended);
""")]


@dataclass(frozen=True)
class AssociationFilter:
    """A search: every field empty/None matches all. `since`/`until` are epoch seconds."""

    calling_aet: str = ""
    outcome: str = ""
    service: str = ""
    since: float | None = None
    until: float | None = None

    def where(self) -> tuple[str, list]:
        clauses, args = [], []
        if self.calling_aet:
            clauses.append("calling_aet = ?")
            args.append(self.calling_aet.strip())
        if self.outcome:
            clauses.append("outcome_kind = ?")
            args.append(self.outcome)
        if self.service:
            clauses.append("services LIKE ?")
            args.append(f"% {self.service} %")
        if self.since is not None:
            clauses.append("ended >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("ended < ?")
            args.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


@dataclass(frozen=True)
class AssociationRow:
    id: int
    ended: float  # epoch seconds
    peer: str
    calling_aet: str
    called_aet: str
    operations: str
    duration: float
    outcome: str


@dataclass(frozen=True)
class AssociationPage:
    rows: list[AssociationRow]
    total: int
    page: int
    pages: int
    page_size: int


def outcome_kind(outcome: str) -> str:
    """'aborted: peer sent A-ABORT' -> 'aborted'; 'rejected (...)' -> 'rejected'."""
    word = outcome.strip().split(":")[0].split(" ")[0].lower()
    return word or "closed"


class AssociationHistory:
    """Subscribes to `association` events; stores, prunes and searches them."""

    def __init__(self, db: Database, bus: EventBus, clock=time.time):
        self.db = db
        self.bus = bus
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: list[tuple] = []
        db.migrate(MIGRATIONS)

    def attach(self) -> None:
        self.bus.subscribe(self._on_event, Topic.ASSOCIATION)

    def detach(self) -> None:
        self.bus.unsubscribe(self._on_event)
        self.flush()

    def _on_event(self, event: Event) -> None:
        data = event.data
        ops = data.get("operations") or {}
        outcome = str(data.get("outcome", ""))
        row = (self.clock(), str(data.get("peer", "")), str(data.get("calling_aet", "")),
               str(data.get("called_aet", "")),
               ", ".join(f"{n} {op}" for op, n in sorted(ops.items())) or "none",
               " " + " ".join(sorted(ops)) + " ", float(data.get("duration", 0.0)), outcome,
               outcome_kind(outcome))
        with self._lock:
            self._pending.append(row)

    def flush(self) -> int:
        """Write the associations that ended since the last flush; prune. Returns how many."""
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return 0
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO association_history (ended, peer, calling_aet, called_aet, "
                "operations, services, duration, outcome, outcome_kind) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM association_history WHERE ended < ? OR id <= "
                         "(SELECT max(id) FROM association_history) - ?",
                         (self.clock() - KEEP_DAYS * 86400, KEEP_ROWS))
        return len(rows)

    def search(self, where: AssociationFilter, page: int = 1,
               page_size: int = PAGE_SIZE) -> AssociationPage:
        self.flush()
        sql, args = where.where()
        conn = self.db.connection()
        total = conn.execute(f"SELECT COUNT(*) FROM association_history{sql}",
                             args).fetchone()[0]
        pages = max(1, -(-total // page_size))
        page = max(1, min(page, pages))
        found = conn.execute(
            "SELECT id, ended, peer, calling_aet, called_aet, operations, duration, outcome "
            f"FROM association_history{sql} ORDER BY ended DESC, id DESC LIMIT ? OFFSET ?",
            [*args, page_size, (page - 1) * page_size]).fetchall()
        return AssociationPage([AssociationRow(*r) for r in found], total, page, pages,
                               page_size)

    def calling_aets(self) -> list[str]:
        """The calling AE titles in the history (the filter's suggestions)."""
        self.flush()
        return [r[0] for r in self.db.connection().execute(
            "SELECT DISTINCT calling_aet FROM association_history ORDER BY calling_aet LIMIT 200")]
