"""Floors: what this machine leaves for the targets of issue 14 that the appliance does not
meet, measured in the same run as the reference (DCMTK storescp), so the limits are reproducible
by `make bench` rather than argued.

Per round (3, or BENCH_ROUNDS), one after the other:
- storescp receiving the storage benchmark's CT images (300 x 512x512 16-bit, or
  BENCH_CT_IMAGES) from storescu over one association: its wall time and CPU per image (the
  base of the storage ratios);
- the durable ack's two flushes alone, for as many files of the same size on the same file
  system, laid out as the instance store does: the file written under `instances/.incoming`,
  renamed into its study directory, one syncfs(2) of the file system, then one SQLite commit
  (WAL, synchronous = FULL) of one row; wall time and this thread's CPU per image;
- SHA-256 of one CT file, as the engine hashes every stored file for Storage Commitment
  (hashlib, on OpenSSL like the engine): CPU per image;
- the resident memory of fresh interpreters that import, one more each time, the libraries
  `appliance run` holds (no appliance code run, no data).

One association: storescu sends the next image only after the response, so each image costs the
appliance at least what it costs storescp (the same DCMTK receive and file write) plus what must
happen before the response: the two flushes, and the hash on the association's thread."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_storage import make_ct, run_case
from bench.report import machine, median_range, rounds

ROOT = Path(__file__).resolve().parents[1]
#: Each interpreter imports these, one more each time (label, statement).
IMPORT_STEPS = [
    ("Python alone", "pass"),
    ("+ pydicom (which imports numpy)", "import pydicom"),
    ("+ FastAPI and uvicorn (the web page's server)", "import fastapi, uvicorn"),
    ("+ pynetdicom (the SCU side)", "import pynetdicom"),
    ("+ the engine (DCMTK)", "from appliance.dicom import engine"),
    ("+ the web app", "import appliance.web.app"),
    ("+ every component of `appliance run`", "import appliance.component_list"),
]
TARGET_CT_RATIO = 0.5
TARGET_CPU_RATIO = 1.5
TARGET_IDLE_MB = 80
TARGET_PEAK_MB = 100


def _syncfs():
    libc = ctypes.CDLL(None, use_errno=True)
    call = libc.syncfs
    call.argtypes = [ctypes.c_int]
    return call


def flushes(work: Path, payload: bytes, count: int) -> dict[str, list[float]]:
    """The two flushes per image alone (see the module's docstring), `count` times; seconds
    per image: wall of the syncfs, wall of the commit, and this thread's CPU for both."""
    data = work / "flush-data"
    shutil.rmtree(data, ignore_errors=True)
    incoming, study = data / "instances" / ".incoming", data / "instances" / "1.2.3"
    incoming.mkdir(parents=True)
    study.mkdir()
    syncfs = _syncfs()
    db = sqlite3.connect(data / "index.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE instances (id INTEGER PRIMARY KEY, uid TEXT UNIQUE, path TEXT)")
    root = os.open(data / "instances", os.O_RDONLY | os.O_DIRECTORY)
    out: dict[str, list[float]] = {"syncfs": [], "commit": [], "cpu": []}
    try:
        for number in range(count):
            temp = incoming / f".rx-{number}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            os.rename(temp, study / f"{number}.dcm")
            cpu0, t0 = time.thread_time(), time.perf_counter()
            if syncfs(root) != 0:
                raise OSError(ctypes.get_errno(), "syncfs")
            t1 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO instances (uid, path) VALUES (?, ?)",
                       (f"1.2.3.{number}", f"1.2.3/{number}.dcm"))
            db.execute("COMMIT")
            t2 = time.perf_counter()
            out["syncfs"].append(t1 - t0)
            out["commit"].append(t2 - t1)
            out["cpu"].append(time.thread_time() - cpu0)
    finally:
        os.close(root)
        db.close()
        shutil.rmtree(data, ignore_errors=True)
    return out


def hash_cpu(payload: bytes, count: int) -> float:
    """CPU seconds of one SHA-256 of `payload` (median of `count`)."""
    times = []
    for _ in range(count):
        start = time.thread_time()
        hashlib.sha256(payload).digest()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def import_rss_mb(statements: list[str]) -> float:
    """VmRSS (MB) of a fresh interpreter after these imports."""
    code = "; ".join([*statements, "import gc", "gc.collect()",
                      "print(next(l.split()[1] for l in open('/proc/self/status') "
                      "if l.startswith('VmRSS')))"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=True)
    return int(done.stdout.split()[-1]) / 1024


def main() -> str:
    count = rounds()
    work = Path(tempfile.mkdtemp(prefix="bench-floors-", dir=os.environ.get("BENCH_TMP")))
    scp_wall, scp_cpu, sync, commit, flush_cpu, hashes = [], [], [], [], [], []
    rss: dict[str, list[float]] = {label: [] for label, _ in IMPORT_STEPS}
    try:
        files = make_ct(work)
        payload = files[0].read_bytes()
        for number in range(count):
            r = run_case("dcmtk", work, files, 1)
            scp_wall.append(r["wall"] / r["images"])
            scp_cpu.append(r["cpu"] / r["images"])
            f = flushes(work, payload, len(files))
            sync.append(statistics.median(f["syncfs"]))
            commit.append(statistics.median(f["commit"]))
            flush_cpu.append(statistics.median(f["cpu"]))
            hashes.append(hash_cpu(payload, len(files)))
            for step in range(len(IMPORT_STEPS)):
                label = IMPORT_STEPS[step][0]
                rss[label].append(import_rss_mb([s for _, s in IMPORT_STEPS[:step + 1]]))
            print(f"  round {number + 1}/{count}: storescp {1000 * scp_wall[-1]:.2f} ms/image,"
                  f" flushes {1000 * (sync[-1] + commit[-1]):.2f} ms, SHA-256 "
                  f"{1000 * hashes[-1]:.2f} ms", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(count, len(files), payload, scp_wall, scp_cpu, sync, commit, flush_cpu,
                  hashes, rss)


def report(count: int, images: int, payload: bytes, scp_wall, scp_cpu, sync, commit, flush_cpu,
           hashes, rss: dict[str, list[float]]) -> str:
    def ms(values: list[float]) -> str:
        return median_range([1000 * v for v in values], 2)

    med = statistics.median
    wall, cpu, flush, sha = med(scp_wall), med(scp_cpu), med(sync) + med(commit), med(hashes)
    best_flush = wall / (wall + flush)
    best_hash = wall / (wall + flush + sha)
    cpu_flush = (cpu + med(flush_cpu)) / cpu
    cpu_floor = (cpu + med(flush_cpu) + sha) / cpu
    libraries = med(rss["+ the engine (DCMTK)"])
    imported = med(rss[IMPORT_STEPS[-1][0]])
    lines = [
        "## Floors: what this machine leaves for issue 14's targets",
        "",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}. {count} rounds, each: DCMTK "
        f"storescp receiving {images} CT images ({len(payload) / 1e3:.0f} KB each) from "
        "storescu over one association (as in the storage benchmark); the durable ack's two "
        "flushes alone for as many files of the same size on the same file system (the file "
        "written under `instances/.incoming` and renamed into its study directory, one "
        "syncfs, then one SQLite commit of one row, WAL, synchronous = FULL); SHA-256 of one "
        "file (hashlib on OpenSSL, as the engine hashes every stored file for Storage "
        "Commitment); resident memory of fresh interpreters importing the libraries `appliance "
        "run` holds, one more each time. Median (min–max) over the rounds; per image, the "
        "median of the round.",
        "",
        "| measure | ms per CT image |",
        "|---|---|",
        f"| storescp: wall time | {ms(scp_wall)} |",
        f"| storescp: receiver CPU | {ms(scp_cpu)} |",
        f"| syncfs after one file written and renamed into place | {ms(sync)} |",
        f"| SQLite commit of one row (WAL, synchronous = FULL) | {ms(commit)} |",
        f"| CPU of the two flushes | {ms(flush_cpu)} |",
        f"| SHA-256 of the file (CPU) | {ms(hashes)} |",
        "",
        "| interpreter importing | RSS (MB) |",
        "|---|---|",
        *[f"| {label} | {median_range(values)} |" for label, values in rss.items()],
        "",
        "| target (issue 14) | the best this machine allows (medians) |",
        "|---|---|",
        f"| CT, one association, at least {TARGET_CT_RATIO}x storescp | storescp's time / "
        f"(its time + the two flushes) = {best_flush:.2f}x; with the hash on the "
        f"association's thread {best_hash:.2f}x; each with nothing else before the response "
        "(no structural check, index values, routing, SQL statements or hand-offs) |",
        f"| receiver CPU per CT image at most {TARGET_CPU_RATIO}x storescp's | storescp's CPU "
        f"+ the flushes' CPU = {cpu_flush:.2f}x; + the hash {cpu_floor:.2f}x; each with "
        "nothing else |",
        f"| idle RSS under {TARGET_IDLE_MB} MB | the libraries alone (up to the engine): "
        f"{libraries:.1f} MB; with the web app and every component imported: {imported:.1f} "
        "MB, before any thread, connection or data |",
        f"| peak RSS receiving a 500 MB object under {TARGET_PEAK_MB} MB | the same "
        f"{imported:.1f} MB before the object (the engine streams it to its file) |",
    ]
    return "\n".join(lines)
