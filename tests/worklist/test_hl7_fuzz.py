"""Fuzz of the HL7 port of a real `appliance run`: 1,200 malformed messages made from valid
ORM^O01 messages (truncated, random bytes, segments dropped, separators swapped, MSH fields
deleted). Every one that starts with MSH gets an ACK (AA, AE or AR) within a deadline, the
connection carries on, and afterwards a valid message is still accepted with no descriptor or
thread left behind. Seeded, bounded in count and time, only on 127.0.0.1."""

from __future__ import annotations

import random
import time

from tests.worklist.mllp_peer import connect, exchange, fd_targets, msa, proc_status
from tests.worklist.test_hl7 import orm

COUNT = 1200
PER_CONNECTION = 100
DEADLINE = 240.0  # seconds for the whole run: far more than it needs
FRAMING = {0x0B, 0x1C}  # MLLP's own bytes cannot occur inside a message


def _random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(b for b in rng.randbytes(n) if b not in FRAMING)


def truncate(rng, raw: bytes) -> bytes:
    return raw[:rng.randrange(3, len(raw))]


def random_bytes(rng, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randrange(1, 20)):
        at = rng.randrange(3, len(data))
        data[at:at + rng.randrange(1, 8)] = _random_bytes(rng, rng.randrange(0, 8))
    return bytes(data)


def drop_segments(rng, raw: bytes) -> bytes:
    segments = raw.split(b"\r")
    keep = [segments[0]] + [s for s in segments[1:] if rng.random() < 0.5]
    return b"\r".join(keep)


def swap_separators(rng, raw: bytes) -> bytes:
    a, b = rng.sample([b"|", b"^", b"~", b"\\", b"&", b"\r", b"#", b"\n"], 2)
    start = rng.choice([0, 3, 8, rng.randrange(3, len(raw))])
    return raw[:start] + raw[start:].replace(a, b"\0").replace(b, a).replace(b"\0", b)


def delete_msh_fields(rng, raw: bytes) -> bytes:
    msh, _, rest = raw.partition(b"\r")
    fields = msh.split(b"|")
    for _ in range(rng.randrange(1, 6)):
        if len(fields) > 1:
            del fields[rng.randrange(1, len(fields))]
    if rng.random() < 0.3:
        fields = fields[:rng.randrange(1, len(fields) + 1)]
    return b"|".join(fields) + (b"\r" + rest if rng.random() < 0.7 else b"")


MUTATIONS = [truncate, random_bytes, drop_segments, swap_separators, delete_msh_fields]


def malformed(rng: random.Random, number: int) -> bytes:
    raw = orm(accession=f"F{number}", control=rng.choice(["NW", "XO", "CA", "SC"]),
              version=rng.choice(["2.3", "2.5", "2.5.1"])).encode()
    for _ in range(rng.randrange(1, 3)):
        if len(raw) > 8:  # the mutations need something to cut into
            raw = rng.choice(MUTATIONS)(rng, raw)
    return raw or b"MSH"


def test_every_malformed_message_with_an_msh_is_answered(hl7_appliance):
    proc, _, hl7_port, _ = hl7_appliance()
    with connect(hl7_port) as sock:  # warm up: the worker thread and the store exist
        for n in range(3):
            assert msa(exchange(sock, orm(accession=f"WARM{n}")))[0] == "AA"
    time.sleep(0.5)
    fds, threads = fd_targets(proc.pid), proc_status(proc.pid, "Threads")
    rng = random.Random(21)
    deadline = time.monotonic() + DEADLINE
    unanswered, codes = [], {}
    for first in range(0, COUNT, PER_CONNECTION):
        assert time.monotonic() < deadline, f"fuzz ran out of time after {first} messages"
        sock = connect(hl7_port)
        try:
            for number in range(first, first + PER_CONNECTION):
                message = malformed(rng, number)
                ack = exchange(sock, message, timeout=10)
                if ack is None:
                    if message.startswith(b"MSH"):
                        unanswered.append(message)
                    sock.close()
                    sock = connect(hl7_port)
                    continue
                code = msa(ack)[0]
                codes[code] = codes.get(code, 0) + 1
        finally:
            sock.close()
    assert not unanswered, (f"{len(unanswered)} of {COUNT} messages got no answer, e.g. "
                            f"{unanswered[:3]!r}")
    assert set(codes) <= {"AA", "AE", "AR"} and sum(codes.values()) >= 1000, codes
    with connect(hl7_port) as sock:
        code, _, reason = msa(exchange(sock, orm(accession="AFTERFUZZ")))
        assert code == "AA", reason
    time.sleep(0.5)
    after = fd_targets(proc.pid)
    assert len(after) <= len(fds) + 1, f"new descriptors: {sorted(set(after) - set(fds))}"
    assert proc_status(proc.pid, "Threads") <= threads + 1
    assert proc.proc.poll() is None
