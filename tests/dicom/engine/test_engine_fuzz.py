"""Fuzzing the engine's port with PDUs mutated from real echoscu and storescu associations
(the mutations and clients of tests/dicom/test_fuzz_port.py), the engine in a process of its
own. Bounded: a fixed seed, at least 5,000 mutated PDUs, a pool of clients, a deadline.
Afterwards it still answers C-ECHO, its RSS has not grown by 20 MB, its threads and
descriptors are back where they were, and every connection has its one log line."""

from __future__ import annotations

import re
import time

from tests.conftest import echoscu
from tests.dicom.port_probe import stats, wait_until
from tests.dicom.test_fuzz_port import MUTATED_PDUS, _send_all, fuzz_jobs

SEED = 14
WARM_UP = 300
CONNECTIONS = 3800  # about 6,500 mutated PDUs: the count sent depends on when the engine closes


def test_fuzzed_pdus_leave_the_engine_answering_without_leaks(engine_process, tmp_path):
    proc, port, log = engine_process
    jobs = fuzz_jobs(port, tmp_path / "study", SEED, WARM_UP + CONNECTIONS)
    warm_up = _send_all(port, jobs[:WARM_UP], time.monotonic())
    assert echoscu(port).returncode == 0
    assert wait_until(lambda: stats(proc.pid).threads <= 4, 20.0, 0.5), stats(proc.pid)
    before = stats(proc.pid)
    started = time.monotonic()
    measured = _send_all(port, jobs[WARM_UP:], started)
    seconds = time.monotonic() - started
    mutated_sent = sum(count for _, count in measured)
    done = warm_up + measured
    assert proc.poll() is None, "the engine process died"
    assert mutated_sent >= MUTATED_PDUS, (mutated_sent, len(done), seconds)

    assert echoscu(port).returncode == 0
    settled = wait_until(lambda: (stats(proc.pid).threads <= before.threads + 1
                                  and stats(proc.pid).fds <= before.fds + 1), 20.0, 0.5)
    after = stats(proc.pid)
    print(f"{len(measured)} connections, {mutated_sent} mutated PDUs in {seconds:.1f} s; "
          f"before {before}, after {after}")
    assert settled, (before, after)
    assert after.rss_mb - before.rss_mb < 20, (before, after)

    def logged() -> set[str]:
        return set(re.findall(r"(?:association|connection) from (127\.0\.1\.\d+:\d+) ",
                              log.read_text()))
    wait_until(lambda: {a for a, _ in done} <= logged(), 10.0, 0.5)
    missing = {a for a, _ in done} - logged()
    assert not missing, f"{len(missing)} of {len(done)} connections without a log line"
