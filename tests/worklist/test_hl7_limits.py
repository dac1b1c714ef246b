"""The HL7 listener's limits against a real `appliance run`: floods of connections holding
unterminated 1 MB blocks or nothing are closed beyond `max_connections` (and
`max_connections_per_host`) while DICOM and the web page keep answering, with the process's
memory and descriptors bounded; a silent connection is closed after `idle_timeout`; a message
over `max_message_kb` gets an AR, then the connection is closed; the minimal malformed messages
get an AR; a host outside `allowed_hosts` is refused. Only 127.0.0.0/8 is used."""

from __future__ import annotations

import resource
import selectors
import socket
import time

import pytest

from tests.conftest import echoscu
from tests.worklist.mllp_peer import (
    START,
    closed_by_server,
    connect,
    exchange,
    msa,
    open_fds,
    proc_status,
    read_ack,
    still_open,
    web_answers,
)
from tests.worklist.test_hl7 import orm

MAX_CONNECTIONS, PER_HOST = 16, 4
SOURCES = [f"127.0.0.{n}" for n in range(1, 21)]  # 20 hosts x 4 > 16


def open_from_many_hosts(port: int, count: int) -> list[socket.socket]:
    socks = []
    for n in range(count):
        try:
            socks.append(connect(port, SOURCES[n % len(SOURCES)]))
        except OSError:  # refused or timed out under the flood: not held either
            pass
    return socks


def push(socks: list[socket.socket], data: bytes, deadline: float) -> None:
    """Send `data` on every socket as far as the server reads it (non-blocking, bounded)."""
    view = memoryview(data)
    sel = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_WRITE, 0)
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            sent = key.data
            try:
                sent += key.fileobj.send(view[sent:sent + 262144])
            except OSError:  # closed by the server
                sel.unregister(key.fileobj)
                continue
            if sent >= len(data):
                sel.unregister(key.fileobj)
            else:
                sel.modify(key.fileobj, selectors.EVENT_WRITE, sent)
    sel.close()


def held(socks: list[socket.socket], settle: float = 5.0) -> int:
    """How many connections the server still holds open once refusals have settled."""
    deadline = time.monotonic() + settle
    count = sum(still_open(s) for s in socks)
    while count > MAX_CONNECTIONS and time.monotonic() < deadline:
        time.sleep(0.2)
        count = sum(still_open(s) for s in socks)
    return count


def assert_dicom_and_web_answer(dicom_port: int, web_port: int) -> None:
    result = echoscu(dicom_port)
    assert result.returncode == 0, result.stderr
    assert web_answers(web_port) < 500


def test_flood_of_unterminated_1mb_blocks_is_bounded(hl7_appliance):
    proc, dicom_port, hl7_port, web_port = hl7_appliance(
        max_connections=MAX_CONNECTIONS, max_connections_per_host=PER_HOST, idle_timeout=60.0)
    rss_before, fds_before = proc_status(proc.pid, "VmRSS"), open_fds(proc.pid)
    block = START + b"MSH|^~\\&|FLOOD|" + b"A" * (1024 * 1024 - 64)  # no end: never complete
    socks = open_from_many_hosts(hl7_port, 500)
    try:
        push(socks, block, time.monotonic() + 60)
        assert held(socks) <= MAX_CONNECTIONS
        assert open_fds(proc.pid) <= fds_before + MAX_CONNECTIONS + 8
        growth_mb = (proc_status(proc.pid, "VmRSS") - rss_before) / 1024
        assert growth_mb < 100, f"RSS grew by {growth_mb:.0f} MB"
        assert_dicom_and_web_answer(dicom_port, web_port)
    finally:
        for sock in socks:
            sock.close()


def test_thousand_idle_connections_leave_dicom_and_web_working(hl7_appliance):
    proc, dicom_port, hl7_port, web_port = hl7_appliance(
        max_connections=MAX_CONNECTIONS, max_connections_per_host=PER_HOST, idle_timeout=60.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # the test needs more than 1,000 descriptors; the appliance keeps the limit it started with
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    fds_before = open_fds(proc.pid)
    socks = []
    try:
        socks = open_from_many_hosts(hl7_port, 1000)
        assert len(socks) > 900
        assert held(socks) <= MAX_CONNECTIONS
        assert open_fds(proc.pid) <= fds_before + MAX_CONNECTIONS + 8
        assert_dicom_and_web_answer(dicom_port, web_port)
    finally:
        for sock in socks:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    time.sleep(0.5)
    with connect(hl7_port) as sock:  # the slots are free again once the flood is gone
        code, _, reason = msa(exchange(sock, orm(accession="AFTER")))
        assert code == "AA", reason


def test_per_host_limit_leaves_room_for_other_hosts(hl7_appliance):
    proc, _, hl7_port, _ = hl7_appliance(max_connections=8, max_connections_per_host=2)
    first = [connect(hl7_port, "127.0.0.1") for _ in range(2)]
    try:
        with connect(hl7_port, "127.0.0.1") as third:
            assert closed_by_server(third, 5)
        with connect(hl7_port, "127.0.0.3") as other:
            code, _, reason = msa(exchange(other, orm()))
            assert code == "AA", reason
        assert "max_connections_per_host 2" in proc.wait_log("refused")
    finally:
        for sock in first:
            sock.close()


def test_idle_connection_is_closed_after_idle_timeout(hl7_appliance):
    proc, _, hl7_port, _ = hl7_appliance(idle_timeout=1.0)
    with connect(hl7_port) as silent, connect(hl7_port) as halfway:
        halfway.sendall(START + b"MSH|^~\\&|RIS|HOSP|EDGEBOX|HOSP|2026")  # and then nothing
        assert closed_by_server(silent, 6)
        assert closed_by_server(halfway, 6)
    proc.wait_log("without a complete message")
    with connect(hl7_port) as sock:  # a sender that keeps talking is served
        code, _, reason = msa(exchange(sock, orm()))
        assert code == "AA", reason


def test_message_over_the_size_limit_gets_an_ar_then_close(hl7_appliance):
    proc, _, hl7_port, _ = hl7_appliance(max_message_kb=4)
    big = orm(accession="BIG").replace("DOE^JOHN^Q", "DOE^" + "J" * 8000)
    for terminated in (True, False):
        with connect(hl7_port) as sock:
            raw = START + big.encode() + (b"\x1c\r" if terminated else b"")
            sock.sendall(raw)
            ack = read_ack(sock, 10)
            assert ack is not None, "no answer to an oversized message"
            code, control, reason = msa(ack)
            assert (code, control) == ("AR", "MSGBIGNW")
            assert "size limit of 4 KiB" in reason
            assert closed_by_server(sock, 5)
    with connect(hl7_port) as sock:  # a message within the limit is still taken
        code, _, reason = msa(exchange(sock, orm()))
        assert code == "AA", reason


@pytest.mark.parametrize("message, control", [
    ("MSH|^~\\&", ""),
    ("MSH|^~\\&|RIS|HOSP|EDGEBOX|HOSP|20260101120000||ORM^O01|NOVERSION|P\r"
     "PID|1||P1^^^HOSP^MR||DOE^JOHN", "NOVERSION"),
], ids=["MSH only", "no MSH-12"])
def test_minimal_malformed_messages_get_an_ar(hl7_appliance, message, control):
    _, _, hl7_port, _ = hl7_appliance()
    with connect(hl7_port) as sock:
        ack = exchange(sock, message)
        assert ack is not None, "no answer"
        code, echoed, reason = msa(ack)
        assert (code, echoed) == ("AR", control)
        assert reason
        code, _, reason = msa(exchange(sock, orm()))  # the connection carries on
        assert code == "AA", reason


def test_host_outside_allowed_hosts_is_refused(hl7_appliance):
    proc, _, hl7_port, _ = hl7_appliance(allowed_hosts=["127.0.0.1", "10.0.0.0/8"])
    with connect(hl7_port, "127.0.0.2") as stranger:
        ack = exchange(stranger, orm(accession="STRANGER"))
        assert ack is None or msa(ack)[0] != "AA"
        assert closed_by_server(stranger, 5)
    assert "not in [worklist.hl7] allowed_hosts" in proc.wait_log("127.0.0.2")
    with connect(hl7_port, "127.0.0.1") as friend:
        code, _, reason = msa(exchange(friend, orm()))
        assert code == "AA", reason
