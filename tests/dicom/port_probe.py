"""Black-box tools for probing the DICOM port of a running appliance: raw sockets (from any
127.0.0.0/8 source address), PDUs captured from real DCMTK associations through a recording
proxy, and the process's RSS, threads and descriptors from /proc."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import DCMTK_ENV, connect_loopback, free_port

A_ABORT = 0x07


@dataclass
class ProcessStats:
    rss_mb: float
    threads: int
    fds: int


def stats(pid: int) -> ProcessStats:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return ProcessStats(rss_mb=int(fields["VmRSS"].split()[0]) / 1024,
                        threads=int(fields["Threads"]),
                        fds=len(os.listdir(f"/proc/{pid}/fd")))


def own_sockets():
    """This process's sockets, each as a duplicate the caller closes (from /proc/self/fd)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            yield socket.socket(fileno=os.dup(int(name)))
        except OSError:  # closed while we looked
            continue


def connected_on(port: int) -> int:
    """How many of this process's sockets are connections accepted on its `port` (the
    listener itself has no peer): an in-process engine's open connections, whatever other
    descriptors the process opens or closes meanwhile."""
    count = 0
    for sock in own_sockets():
        with sock:
            try:
                if sock.family in (socket.AF_INET, socket.AF_INET6) and \
                        sock.getsockname()[1] == port and sock.getpeername():
                    count += 1
            except OSError:  # not connected
                continue
    return count


def connect(port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    """A TCP connection from `source` (tests.conftest.connect_loopback)."""
    return connect_loopback(port, source, timeout)


def split_pdus(stream: bytes) -> list[bytes]:
    """Whole PDUs (header included) from a recorded byte stream."""
    pdus, offset = [], 0
    while offset + 6 <= len(stream):
        length = struct.unpack(">L", stream[offset + 2:offset + 6])[0]
        pdus.append(stream[offset:offset + 6 + length])
        offset += 6 + length
    return pdus


def read_pdu(sock: socket.socket) -> bytes:
    """One whole PDU from the peer (b'' when the connection closed first)."""
    header = _read_exactly(sock, 6)
    if len(header) < 6:
        return b""
    length = struct.unpack(">L", header[2:6])[0]
    return header + _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data


def closed_or_aborted(sock: socket.socket, timeout: float) -> str:
    """Wait for the server to end the connection: 'abort' (an A-ABORT arrived, then or later
    the close), 'closed', or 'open' when neither happened within `timeout`."""
    sock.settimeout(timeout)
    try:
        pdu = read_pdu(sock)
    except TimeoutError:
        return "open"
    if pdu[:1] == bytes([A_ABORT]):
        return "abort"
    return "closed" if not pdu else f"pdu 0x{pdu[0]:02X}"


class RecordingProxy:
    """Listens on a free port, forwards to the appliance, records what the client sends."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.sent = bytearray()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        client, _ = self._server.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        back = threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True)
        back.start()
        self._pump(client, upstream, self.sent)
        back.join(10)
        client.close()
        upstream.close()
        self._server.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        try:
            while data := source.recv(65536):
                if record is not None:
                    record += data
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def wait(self) -> bytes:
        self._thread.join(20)
        return bytes(self.sent)


def capture(port: int, command: list[str], files: tuple[str, ...] = ()) -> list[bytes]:
    """The PDUs a DCMTK tool sends in one real association with the appliance on `port`
    (`command` without host and port; `files` after them)."""
    proxy = RecordingProxy(port)
    result = subprocess.run([*command, "127.0.0.1", str(proxy.port), *files],
                            capture_output=True,
                            text=True, env=DCMTK_ENV, timeout=60)
    assert result.returncode == 0, result.stderr
    return split_pdus(proxy.wait())


def echo_pdus(port: int, calling: str = "CAPTURE") -> list[bytes]:
    """A-ASSOCIATE-RQ, P-DATA-TF (C-ECHO-RQ), A-RELEASE-RQ, as echoscu sends them."""
    pdus = capture(port, ["echoscu", "-aet", calling, "-aec", "EDGEBOX"])
    assert [p[0] for p in pdus] == [0x01, 0x04, 0x05], [p[:6].hex() for p in pdus]
    return pdus


def associate(port: int, request: bytes, source: str = "127.0.0.1") -> socket.socket:
    """A raw connection that sent `request` (an A-ASSOCIATE-RQ) and got the A-ASSOCIATE-AC."""
    sock = connect(port, source)
    sock.sendall(request)
    answer = read_pdu(sock)
    assert answer[:1] == b"\x02", f"no A-ASSOCIATE-AC: {answer[:16].hex()}"
    return sock


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
