"""A bounded raw HTTP/1.1 client for the request-limit tests: it can announce a body far larger
than it sends, or stream a chunked body, and stops sending as soon as the server answers, so
no test ever pushes more than `max_bytes` nor waits longer than `timeout`."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class Answer:
    status: int | None  # None: no answer within the timeout
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0  # body bytes the server took before answering

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def body_chunks(max_bytes: int, chunked: bool, prefix: bytes = b"") -> Iterator[bytes]:
    payload = b"x" * CHUNK
    sent = 0
    if prefix:
        sent += len(prefix)
        yield b"%x\r\n%s\r\n" % (len(prefix), prefix) if chunked else prefix
    while sent < max_bytes:
        sent += len(payload)
        yield b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload
    if chunked:
        yield b"0\r\n\r\n"


def request(port: int, method: str, path: str, headers: dict[str, str], *,
            content_length: int | None = None, max_bytes: int = 4 * 1024 * 1024,
            prefix: bytes = b"", timeout: float = 10.0) -> Answer:
    """Send the head (with `Content-Length: content_length`, or chunked when None), then up to
    `max_bytes` of body (starting with `prefix`, then filler) while the server has not
    answered; return its answer."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    chunked = content_length is None
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {content_length}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    answer = Answer(None)
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        # An announced length over the limit is answered before any body is sent.
        select.select([sock], [], [], 0.5)
        for piece in body_chunks(max_bytes, chunked, prefix):
            if select.select([sock], [], [], 0.005)[0]:
                break  # the server answered: stop sending
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            answer.sent += len(piece)
        data = _read_until_answered(sock, timeout)
    finally:
        sock.close()
    return _parse(data, answer)


def _read_until_answered(sock: socket.socket, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(body) >= int(length[0]):
                break
    return data


def _parse(data: bytes, answer: Answer) -> Answer:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return answer
    lines = head.decode("latin-1").split("\r\n")
    answer.status = int(lines[0].split()[1])
    answer.headers = {k.strip().lower(): v.strip() for k, v in
                      (line.split(":", 1) for line in lines[1:] if ":" in line)}
    answer.body = body
    return answer


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")
