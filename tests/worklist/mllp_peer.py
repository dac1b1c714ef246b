"""A plain-socket MLLP peer for the HL7 abuse tests: connections from any 127/8 source address,
raw blocks, ACKs read with a deadline, and what the server process holds (/proc)."""

from __future__ import annotations

import http.client
import os
import socket
import time

import hl7

from tests.conftest import connect_loopback

START, END = b"\x0b", b"\x1c\r"


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    """A TCP connection from `source` (tests.conftest.connect_loopback)."""
    return connect_loopback(port, source, timeout)


def read_ack(sock: socket.socket, timeout: float = 10.0) -> hl7.Message | None:
    """The next MLLP block as an HL7 message; None when the server closes first."""
    data = b""
    deadline = time.monotonic() + timeout
    while END not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return None
        if not chunk:
            return None
        data += chunk
    block = data[data.index(START) + 1:data.index(END)]
    return hl7.parse(block.decode("utf-8", "replace"))


def exchange(sock: socket.socket, message: str | bytes, timeout: float = 10.0):
    """Send one message in an MLLP block, return its ACK (None when the server closed)."""
    raw = message.encode() if isinstance(message, str) else message
    try:
        sock.sendall(START + raw + END)
    except (ConnectionResetError, BrokenPipeError):
        return None
    return read_ack(sock, timeout)


def msa(ack: hl7.Message) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control ID, MSA-3 reason unescaped)."""
    segment = ack.segment("MSA")
    field = [str(segment[i]) if i < len(segment) else "" for i in range(4)]
    return field[1], field[2], ack.unescape(field[3])


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes the connection within `timeout` (data read is dropped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed this connection (checked without waiting)."""
    sock.setblocking(False)
    try:
        return sock.recv(65536, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid: int) -> list[str]:
    """What the process's descriptors point at ("socket:[...]", files, pipes), sorted."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # closed meanwhile
            pass
    return sorted(targets)


def proc_status(pid: int, key: str) -> int:
    """A number from /proc/PID/status (VmRSS in kB, Threads)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def web_answers(port: int) -> int:
    """HTTP status of GET / on the web page (raises when it does not answer in 10 s)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()
