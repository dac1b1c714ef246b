"""The print spool: a persisted queue of print jobs (PENDING -> PRINTING -> DONE / FAILURE)
rendered and printed one at a time, by priority then age, on each profile's HAL printer.

N-ACTION only records the job (row in the database plus the film specs in
`<data_dir>/spool/<job>.films`, both durable; the file's format is in spool_format.py) and
returns; a worker thread renders and prints,
keeps a small PNG preview per film under `<data_dir>/print/previews/`, and trims the history.
The film specs of the newest `reprint_keep` finished jobs are kept so they can be reprinted.
Jobs wait while their printer reports FAILURE and survive a restart. A second thread polls
every printer's status and tells listeners (the print service, the event bus) of changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydicom.uid import generate_uid

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ApplianceError, ComponentFailure
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.print.profiles import open_profile_printer, printer_profiles
from appliance.print.render import FilmSpec, render_film
from appliance.print.spool_format import (
    SpoolFormatError,
    job_path,
    load_job_films,
    recover_spool_dir,
    write_films,
)
from appliance.store.database import Database, Migration
from hal.printer import Film, Printer, PrinterError, PrinterState

log = logging.getLogger(__name__)

MIGRATIONS = [Migration("print", 1, """
CREATE TABLE print_jobs (
    uid TEXT PRIMARY KEY,
    printer TEXT NOT NULL,
    status TEXT NOT NULL,              -- PENDING, PRINTING, DONE, FAILURE
    status_info TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL,         -- 0 HIGH, 1 MED, 2 LOW
    copies INTEGER NOT NULL,
    films INTEGER NOT NULL,
    medium TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    calling_aet TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    render_ms REAL,
    previews TEXT NOT NULL DEFAULT ''
);
CREATE INDEX print_jobs_status ON print_jobs (status, priority, created);
"""), Migration("print", 2, """
ALTER TABLE print_jobs ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
ALTER TABLE print_jobs ADD COLUMN film_size TEXT NOT NULL DEFAULT '';
UPDATE print_jobs SET number = rowid;
""")]  # number: the job's short number on this box (1, 2, 3 ...), shown instead of its UID
PRIORITIES = {"HIGH": 0, "MED": 1, "LOW": 2}
PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}
#: Job status -> the `state` of the `print_job` event.
JOB_STATES = {"PENDING": "pending", "PRINTING": "printing", "DONE": "done",
              "FAILURE": "failed"}

Listener = Callable[[str, dict], None]


class JobNotFound(ApplianceError, LookupError):
    """No such print job, or its films are no longer kept."""


class QueueFull(ApplianceError, RuntimeError):
    """The spool holds `[print] max_queue` unfinished jobs already."""


class PrintSpool(Component):
    name = "print"

    def __init__(self, config: ApplianceConfig, bus: EventBus | None = None, **printer_hooks):
        self.bus = bus
        self.listeners: list[Listener] = []
        self.printer_hooks = printer_hooks
        self.printers: dict[str, Printer] = {}
        self.states: dict[str, PrinterState] = {}
        self._wake = threading.Condition()
        self._wakes = 0  # counts _kick() calls: a kick between a look and a wait is not lost
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.db: Database | None = None
        self._in_memory: dict[str, list[FilmSpec]] = {}
        self.started_at = time.time()
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.settings = config.print
        self.data_dir = Path(config.device.data_dir)
        self.spool_dir = self.data_dir / "spool"
        self.preview_dir = self.data_dir / "print" / "previews"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.preview_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database.in_data_dir(self.data_dir)
        self.db.migrate(MIGRATIONS)
        recover_spool_dir(self.spool_dir)
        with self.db.transaction() as tx:   # a job cut off mid-print is printed again
            tx.execute("UPDATE print_jobs SET status='PENDING' WHERE status='PRINTING'")
        for profile in printer_profiles(self.config):
            self.printers[profile.name] = open_profile_printer(
                profile, self.config, **{"bus": self.bus, **self.printer_hooks})
            self.states[profile.name] = self.printers[profile.name].status()
        self._stop.clear()
        self._threads = [threading.Thread(target=target, name=f"print-{label}", daemon=True)
                         for label, target in (("spool", self._work), ("status", self._watch))]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._kick()
        for thread in self._threads:
            thread.join(timeout)
        for printer in self.printers.values():
            printer.close()
        self.printers.clear()
        if self.db is not None:
            self.db.close()

    def check(self) -> None:
        for thread in self._threads:
            if not thread.is_alive():
                raise ComponentFailure(f"{thread.name} thread stopped")

    def status(self) -> str:
        counts = self.counts()
        states = ", ".join(f"{n}: {s.info}" for n, s in self.states.items())
        return f"{counts.get('PENDING', 0)} waiting; {states}"

    # -- jobs -------------------------------------------------------------------------------

    def submit(self, printer: str, specs: list[FilmSpec], copies: int = 1,
               priority: str = "MED", medium: str = "", label: str = "",
               calling_aet: str = "", uid: str | None = None) -> str:
        """Record a print job durably and return its UID; the worker prints it."""
        if self.db is None:
            raise QueueFull("the print spool is not running")
        waiting = self.db.connection().execute(
            "SELECT COUNT(*) FROM print_jobs WHERE status IN ('PENDING', 'PRINTING')"
        ).fetchone()[0]
        if waiting >= self.settings.max_queue:
            raise QueueFull(f"print queue full ({waiting} jobs waiting)")
        uid = uid or generate_uid()
        path = job_path(self.spool_dir, uid)
        # The worker prints from these very objects (they share the session's pixel arrays);
        # the file is read back only after a restart. One copy of the pixels, not two.
        self._in_memory[uid] = specs
        try:
            write_films(path, specs)
            with self.db.transaction() as tx:
                sizes = ", ".join(dict.fromkeys(spec.film_size_id for spec in specs))
                tx.execute("INSERT INTO print_jobs (uid, printer, status, priority, copies, "
                           "films, medium, label, calling_aet, created, film_size, number) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?, (SELECT COALESCE(MAX(number), 0) "
                           "+ 1 FROM print_jobs))",
                           (uid, printer, "PENDING", PRIORITIES.get(priority, 1), copies,
                            len(specs), medium, label, calling_aet, time.time(), sizes))
        except BaseException:
            self._in_memory.pop(uid, None)
            raise
        self._notify("job", uid=uid, status="PENDING", info="", printer=printer)
        self._kick()
        return uid

    def job(self, uid: str) -> dict | None:
        if self.db is None:
            return None
        row = self.db.connection().execute("SELECT * FROM print_jobs WHERE uid=?",
                                           (uid,)).fetchone()
        return dict(row) if row else None

    def jobs(self, limit: int = 100) -> list[dict]:
        """The most recent jobs first (the history shown on the web page)."""
        rows = self.db.connection().execute(
            "SELECT * FROM print_jobs ORDER BY COALESCE(finished, created) DESC LIMIT ?",
            (limit,)).fetchall()
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        if self.db is None:
            return {}
        rows = self.db.connection().execute(
            "SELECT status, COUNT(*) FROM print_jobs GROUP BY status").fetchall()
        return {r[0]: r[1] for r in rows}

    def preview(self, uid: str, page: int = 1) -> bytes | None:
        """The PNG preview of one film of a finished job, or None."""
        job = self.job(uid)
        if job is None:
            return None
        names = [n for n in job["previews"].split(",") if n]
        if not 1 <= page <= len(names):
            return None
        try:
            return (self.preview_dir / names[page - 1]).read_bytes()
        except OSError:
            return None

    def reprint(self, uid: str) -> str:
        """Queue a job's films again as a new job (same printer, copies, priority); its UID.
        The films (the job's spool file) are kept for the newest `[print] reprint_keep`
        finished jobs; an older job cannot be printed again."""
        job = self.job(uid)
        if job is None:
            raise JobNotFound(f"no print job {uid!r}")
        try:
            specs = load_job_films(self.spool_dir, uid)
        except OSError:
            raise JobNotFound(f"print job {uid!r} can no longer be printed again: its films "
                              "were not kept") from None
        except SpoolFormatError as exc:
            raise JobNotFound(f"print job {uid!r} cannot be printed again: {exc}") from None
        return self.submit(job["printer"], specs, copies=job["copies"],
                           priority=PRIORITY_NAMES.get(job["priority"], "MED"),
                           medium=job["medium"], label=job["label"],
                           calling_aet=job["calling_aet"])

    def wait_job(self, uid: str, timeout: float = 30.0) -> dict:
        """Wait until a job is DONE or FAILURE (for tests and tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(uid)
            if job and job["status"] in ("DONE", "FAILURE"):
                return job
            time.sleep(0.02)
        raise TimeoutError(f"print job {uid} not finished after {timeout}s: {self.job(uid)}")

    def printer_state(self, name: str) -> PrinterState:
        return self.states.get(name, PrinterState("FAILURE", "PRINTER DOWN", "not running"))

    # -- worker -----------------------------------------------------------------------------

    def _next_job(self) -> dict | None:
        ready = [n for n, s in self.states.items() if s.ok]
        if not ready:
            return None
        marks = ",".join("?" * len(ready))
        row = self.db.connection().execute(
            f"SELECT * FROM print_jobs WHERE status='PENDING' AND printer IN ({marks}) "
            "ORDER BY priority, created LIMIT 1", ready).fetchone()
        return dict(row) if row else None

    def _kick(self) -> None:
        """Wake the worker: a job was submitted, a printer's state changed, or stop."""
        with self._wake:
            self._wakes += 1
            self._wake.notify_all()

    def _work(self) -> None:
        # Waits for a kick, not a timer: nothing else makes a PENDING job printable.
        while not self._stop.is_set():
            with self._wake:
                seen = self._wakes
            job = self._next_job()
            if job is None:
                with self._wake:
                    while self._wakes == seen and not self._stop.is_set():
                        self._wake.wait()
                continue
            self._print(job)

    def _set(self, uid: str, status: str, info: str = "", **columns) -> None:
        sets = ", ".join(f"{k}=?" for k in ("status", "status_info", *columns))
        with self.db.transaction() as tx:
            tx.execute(f"UPDATE print_jobs SET {sets} WHERE uid=?",
                       (status, info, *columns.values(), uid))
        job = self.job(uid)
        self._notify("job", uid=uid, status=status, info=info, printer=job["printer"])

    def _print(self, job: dict) -> None:
        uid, name = job["uid"], job["printer"]
        self._set(uid, "PRINTING", started=time.time())
        try:
            printer = self.printers.get(name)
            if printer is None:
                raise PrinterError(f"printer profile {name!r} no longer exists")
            specs = self._in_memory.pop(uid, None)
            if specs is None:
                specs = load_job_films(self.spool_dir, uid)
            previews, render_ms = [], 0.0
            for page, spec in enumerate(specs, start=1):
                started = time.perf_counter()
                image = render_film(spec)
                render_ms += (time.perf_counter() - started) * 1000
                width_mm, height_mm = _film_mm(spec)
                printer.print_film(Film(
                    image=image, dpi=spec.dpi, width_mm=width_mm, height_mm=height_mm,
                    film_size_id=spec.film_size_id, medium=job["medium"],
                    orientation=spec.orientation, copies=job["copies"], job_id=uid,
                    page=page, label=job["label"], info={"calling_aet": job["calling_aet"]}))
                previews.append(self._preview(uid, page, image))
                del image
            self._set(uid, "DONE", "NORMAL", finished=time.time(), render_ms=render_ms,
                      previews=",".join(previews))
        except (PrinterError, OSError, ApplianceError) as exc:
            log.error("print job %s on %s failed: %s", uid, name, exc)
            self._set(uid, "FAILURE", str(exc)[:200], finished=time.time())
        except Exception as exc:  # never let one bad film stop the spool
            log.exception("print job %s on %s failed", uid, name)
            self._set(uid, "FAILURE", f"internal error: {exc}"[:200], finished=time.time())
        self._in_memory.pop(uid, None)
        self._trim_history()
        return_free_memory()

    def _preview(self, uid: str, page: int, image) -> str:
        # reduce() first: a box-filtered small copy, not a second full-size film in memory
        factor = max(1, max(image.size) // (2 * self.settings.preview_px))
        preview = image.reduce(factor) if factor > 1 else image.copy()
        preview.thumbnail((self.settings.preview_px, self.settings.preview_px))
        name = f"{uid}-{page}.png"
        preview.save(self.preview_dir / name, format="PNG")
        return name

    def _trim_history(self) -> None:
        old = self.db.connection().execute(
            "SELECT uid, previews FROM print_jobs WHERE status IN ('DONE', 'FAILURE') "
            "ORDER BY finished DESC LIMIT -1 OFFSET ?", (self.settings.history,)).fetchall()
        for row in old:
            for name in filter(None, row["previews"].split(",")):
                (self.preview_dir / name).unlink(missing_ok=True)
            with self.db.transaction() as tx:
                tx.execute("DELETE FROM print_jobs WHERE uid=?", (row["uid"],))
            job_path(self.spool_dir, row["uid"]).unlink(missing_ok=True)
        # the films of the newest finished jobs stay for reprints; older ones go
        done = self.db.connection().execute(
            "SELECT uid FROM print_jobs WHERE status IN ('DONE', 'FAILURE') "
            "ORDER BY finished DESC LIMIT -1 OFFSET ?", (self.settings.reprint_keep,)).fetchall()
        for row in done:
            job_path(self.spool_dir, row["uid"]).unlink(missing_ok=True)

    # -- printer status ---------------------------------------------------------------------

    def poll_status(self) -> None:
        """Read every printer's status now; tell listeners about changes."""
        for name, printer in list(self.printers.items()):
            state = printer.status()
            if state != self.states.get(name):
                self.states[name] = state
                log.info("printer %s: %s (%s) %s", name, state.status, state.info, state.detail)
                self._notify("printer", printer=name, status=state.status, info=state.info,
                             detail=state.detail)
                self._kick()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.status_interval):
            try:
                self.poll_status()
            except Exception:
                log.exception("printer status check failed")

    def _notify(self, kind: str, **data) -> None:
        if self.bus is not None:
            # topics and fields the LEDs, front panel and web metrics read (core/health.py)
            if kind == "job":
                self.bus.publish(Topic.PRINT_JOB, job=data["uid"],
                                 state=JOB_STATES.get(data["status"], data["status"].lower()),
                                 printer=data.get("printer", ""), info=data.get("info", ""))
            else:
                self.bus.publish(Topic.PRINTER, name=data["printer"],
                                 state=data["status"].lower(), info=data["info"],
                                 detail=data.get("detail", ""))
        for listener in list(self.listeners):
            try:
                listener(kind, data)
            except Exception:
                log.exception("print listener failed")


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):   # not glibc: nothing to do
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def return_free_memory() -> None:
    """Give the memory freed by a film (tens of MB, in many threads' malloc arenas) back to the
    system, so the next film starts from the idle footprint instead of creeping upwards."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _film_mm(spec: FilmSpec) -> tuple[float, float]:
    from appliance.print.layout import film_pixels
    _, _, width_mm, height_mm = film_pixels(spec.film_size_id, spec.orientation, spec.dpi)
    return width_mm, height_mm
