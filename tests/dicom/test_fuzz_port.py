"""Fuzzing the DICOM port of a running `appliance run` with PDUs mutated from real associations.

The PDUs echoscu and storescu send (A-ASSOCIATE-RQ, P-DATA-TF, A-RELEASE-RQ) are captured
through a recording proxy, then sent again over many connections with truncations, bit flips,
huge and wrong lengths, changed PDU types, random bytes and shuffled order. Bounded: a fixed
seed, at least 5,000 mutated PDUs, a small pool of clients and a deadline. Afterwards the
appliance still answers C-ECHO, its RSS has not grown by 20 MB, its threads and descriptors are
back to where they were, and every connection has its one line in the association log.
"""

from __future__ import annotations

import random
import re
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import echoscu
from tests.dicom.port_probe import capture, connect, echo_pdus, stats, wait_until
from tests.storage.dicom_files import make_study

SEED = 21
MUTATED_PDUS = 5000
WARM_UP = 300
CONNECTIONS = 3000
WORKERS = 8
DEADLINE = 90.0  # seconds of sending at most; the count is asserted, so a cut run fails


def mutate(pdu: bytes, rng: random.Random) -> bytes:
    """One mutated copy of a captured PDU."""
    kind = rng.randrange(7)
    if kind == 0:  # truncated
        return pdu[:rng.randrange(0, len(pdu))]
    if kind == 1:  # bit flips anywhere
        data = bytearray(pdu)
        for _ in range(rng.randrange(1, 9)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 2:  # a huge claimed length, with the real body (or part of it) behind it
        length = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000000, rng.randrange(2**20, 2**32)])
        return pdu[:2] + struct.pack(">L", length) + pdu[6:6 + rng.randrange(len(pdu))]
    if kind == 3:  # a length a little off
        length = max(0, len(pdu) - 6 + rng.choice([-64, -7, -1, 1, 2, 100]))
        return pdu[:2] + struct.pack(">L", length) + pdu[6:]
    if kind == 4:  # another PDU type, or an unknown one
        return bytes([rng.choice([0, 2, 3, 4, 5, 6, 7, 8, 0x55, 0xFF])]) + pdu[1:]
    if kind == 5:  # random bytes, sometimes behind a plausible header
        junk = rng.randbytes(rng.randrange(1, 400))
        return pdu[:1] + b"\x00" + struct.pack(">L", len(junk)) + junk if rng.random() < 0.5 \
            else junk
    # an item inside the PDU overwritten with random bytes
    data = bytearray(pdu)
    start = rng.randrange(6, max(7, len(data)))
    data[start:start + 8] = rng.randbytes(8)
    return bytes(data)


def plan(streams: list[list[bytes]], rng: random.Random) -> tuple[list[bytes], list[bool]]:
    """The PDUs one connection sends, and which of them are mutated (at least one)."""
    stream = list(rng.choice(streams))
    if rng.random() < 0.15:  # out of order
        rng.shuffle(stream)
    chosen = {i for i in range(len(stream)) if rng.random() < (0.3 if i == 0 else 0.7)}
    chosen = chosen or {rng.randrange(len(stream))}
    return ([mutate(p, rng) if i in chosen else p for i, p in enumerate(stream)],
            [i in chosen for i in range(len(stream))])


def run_connection(port: int, source: str, pdus: list[bytes], mutated: list[bool],
                   abrupt: bool) -> tuple[str, int]:
    """Send `pdus` (stopping when the server closes), then close; returns the client's
    address and the number of mutated PDUs the server was sent."""
    sock = connect(port, source, timeout=5.0)
    host, client_port = sock.getsockname()
    address = f"{host}:{client_port}"
    sent = 0
    try:
        for pdu in pdus:
            sock.sendall(pdu)
            sent += 1
            sock.settimeout(0.02)
            try:
                if sock.recv(65536) == b"":
                    break
            except TimeoutError:
                pass
        if not abrupt:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(3.0)
            while sock.recv(65536):
                pass
    except OSError:  # reset by the server: it closed the connection
        pass
    finally:
        sock.close()
    return address, sum(mutated[:sent])


def fuzz_jobs(port: int, study_dir, seed: int, count: int) -> list[tuple]:
    """`count` client jobs (source address, PDUs, which are mutated, abrupt end) planned from
    a real echoscu association and a real storescu one with the server on `port`."""
    study = make_study(study_dir, 2)
    streams = [echo_pdus(port),
               capture(port, ["storescu", "-aet", "FUZZSTORE", "-aec", "EDGEBOX"],
                       tuple(map(str, study)))]
    rng = random.Random(seed)
    jobs = []
    for number in range(count):
        pdus, mutated = plan(streams, rng)
        jobs.append((f"127.0.1.{number % WORKERS + 1}", pdus, mutated, rng.random() < 0.3))
    return jobs


def test_fuzzed_pdus_leave_the_port_answering_without_leaks(appliance, tmp_path):
    proc, port, _ = appliance({"dicom": {"artim_timeout": 2.0, "max_associations": 16}})
    jobs = fuzz_jobs(port, tmp_path / "study", SEED, WARM_UP + CONNECTIONS)
    # A first round loads what the error paths use once (modules, source lines for the
    # tracebacks pynetdicom logs, allocator arenas of the peak): that is not growth.
    warm_up = _send_all(port, jobs[:WARM_UP], time.monotonic())
    assert echoscu(port).returncode == 0
    time.sleep(3.0)
    before = stats(proc.pid)
    started = time.monotonic()
    measured = _send_all(port, jobs[WARM_UP:], started)
    seconds = time.monotonic() - started
    mutated_sent = sum(count for _, count in measured)
    done = warm_up + measured
    assert mutated_sent >= MUTATED_PDUS, (mutated_sent, len(done), seconds)

    assert echoscu(port).returncode == 0
    settled = wait_until(lambda: _settled(proc.pid, before), 20.0, 0.5)
    after = stats(proc.pid)
    print(f"{len(measured)} connections, {mutated_sent} mutated PDUs ({seconds:.1f} s after the "
          f"warm-up of {WARM_UP}); "
          f"before {before}, after {after}")
    assert settled, (before, after)
    assert after.rss_mb - before.rss_mb < 20, (before, after)

    def logged() -> set[str]:
        return set(re.findall(r"association from (127\.0\.1\.\d+:\d+) ", proc.log()))
    wait_until(lambda: {a for a, _ in done} <= logged(), 10.0, 0.5)
    missing = {a for a, _ in done} - logged()
    assert not missing, f"{len(missing)} of {len(done)} connections without a log line"


def _send_all(port: int, jobs: list, started: float) -> list[tuple[str, int]]:
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_bounded, port, started, *job) for job in jobs]
        return [r for r in (f.result() for f in futures) if r is not None]


def _bounded(port: int, started: float, source: str, pdus: list[bytes], mutated: list[bool],
             abrupt: bool):
    if time.monotonic() - started > DEADLINE:
        return None
    return run_connection(port, source, pdus, mutated, abrupt)


def _settled(pid: int, before) -> bool:
    now = stats(pid)
    return now.threads <= before.threads + 1 and now.fds <= before.fds + 1
