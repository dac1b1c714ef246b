"""The pre-negotiation gate: a connection gets an association thread only once its whole
A-ASSOCIATE-RQ has arrived.

Every accepted connection is first held here, by one thread watching all of them with a
selector, under the ARTIM timer of PS3.8 9.1.5 (`[dicom] artim_timeout`), and counted against
`[dicom] max_pending_connections` and, per source address, `max_pending_per_host`. When its
first PDU is an A-ASSOCIATE-RQ of a bounded length (`pdu_limits.MAX_ASSOCIATION_PDU`) and all
of it is in the kernel's receive buffer (seen with MSG_PEEK, so the association reads the same
bytes; SO_RCVLOWAT makes the selector wait for them, so a half-sent request costs no CPU), the
connection is handed to the server's association machinery. Otherwise it is closed here,
without ever taking a thread or an association slot:

* closed by the peer, or the ARTIM timer expired (PS3.8 Sta2: Evt17 / Evt18, AA-5 / AA-2);
* a first PDU that is not an A-ASSOCIATE-RQ, one claiming more than the limit, or one that
  pynetdicom's own PDU class cannot decode: A-ABORT (AA-1), except after an A-ABORT from the
  peer (AA-2);
* over the pending limits: closed at once, so one host cannot lock out the modality.

Each closed connection gets its one association log line, through `closed(peer, outcome)`.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pynetdicom.pdu import A_ASSOCIATE_RQ

from appliance.dicom import pdu_limits

log = logging.getLogger(__name__)


@dataclass
class GateLimits:
    """How long and how many connections may wait to complete their A-ASSOCIATE-RQ."""

    artim_timeout: float = 10.0
    max_pending: int = 64
    max_pending_per_host: int = 8


@dataclass
class Pending:
    sock: socket.socket
    address: tuple
    deadline: float
    timeout: float | None
    started: float = field(default_factory=time.monotonic)
    #: Bytes the selector waits for (SO_RCVLOWAT): woken with fewer means the peer closed.
    waiting_for: int = 1

    @property
    def host(self) -> str:
        return str(self.address[0])

    @property
    def peer(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


class ConnectionGate:
    """Holds accepted sockets until their A-ASSOCIATE-RQ is complete; `admit` is called by the
    listener thread, `hand_over(sock, address)` and `closed(peer, outcome, duration)` by the
    gate thread."""

    #: Longest sleep of the gate thread with nothing due (it also wakes on any traffic).
    POLL = 0.5

    def __init__(self, limits: GateLimits, hand_over: Callable[[socket.socket, tuple], None],
                 closed: Callable[[str, str, float], None],
                 tick: Callable[[], None] | None = None):
        self.limits = limits
        self._tick = tick
        self._hand_over = hand_over
        self._closed = closed
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._pending: dict[socket.socket, Pending] = {}
        self._per_host: Counter = Counter()
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="dicom-gate", daemon=True)
        self._thread.start()

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- listener thread ----------------------------------------------------------------------

    def admit(self, sock: socket.socket, address: tuple) -> None:
        """Take a newly accepted connection (or close it at once when over a limit)."""
        host, limits = str(address[0]), self.limits
        with self._lock:
            if self._stopping:
                refusal = "refused: the listener is stopping"
            elif self._per_host[host] >= limits.max_pending_per_host:
                refusal = (f"refused: too many pending from {host} "
                           f"(max_pending_per_host {limits.max_pending_per_host})")
            elif len(self._pending) >= limits.max_pending:
                refusal = (f"refused: too many pending connections "
                           f"(max_pending_connections {limits.max_pending})")
            else:
                refusal = None
                entry = Pending(sock, address, time.monotonic() + limits.artim_timeout,
                                sock.gettimeout())
                sock.setblocking(False)
                self._pending[sock] = entry
                self._per_host[host] += 1
                self._selector.register(sock, selectors.EVENT_READ)
        if refusal is not None:
            _close(sock)
            self._closed(f"{address[0]}:{address[1]}", refusal, 0.0)
            return
        self._wake()

    def stop(self) -> None:
        """Close every pending connection and end the gate thread."""
        with self._lock:
            self._stopping = True
        self._wake()
        self._thread.join(timeout=5.0)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # the buffer is full: the gate is awake anyway
            pass

    # -- gate thread --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                events = self._selector.select(self._next_wait())
                for key, _ in events:
                    if key.fileobj is self._wake_r:
                        self._drain_wake()
                        continue
                    self._examine(key.fileobj)
                self._expire()
                if self._tick is not None:
                    self._tick()
        except Exception:  # never leave connections hanging
            log.exception("DICOM connection gate failed")
        finally:
            self._close_all()

    def _next_wait(self) -> float:
        with self._lock:
            deadlines = [entry.deadline for entry in self._pending.values()]
        if not deadlines:
            return self.POLL
        return max(0.0, min(min(deadlines) - time.monotonic(), self.POLL))

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _examine(self, sock: socket.socket) -> None:
        """Look (without reading) at what the peer has sent so far, and decide."""
        try:
            data = sock.recv(pdu_limits.PDU_HEADER + pdu_limits.MAX_ASSOCIATION_PDU,
                             socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(sock, f"closed before A-ASSOCIATE-RQ: {exc.strerror or exc}")
            return
        with self._lock:
            entry = self._pending.get(sock)
        if entry is None:
            return
        if len(data) < entry.waiting_for:  # readable below the low-water mark: end of stream
            received = f", {len(data)} bytes received" if data else ""
            self._finish(sock, f"closed before A-ASSOCIATE-RQ: connection closed by peer"
                         f"{received}")
            return
        if data[0] != pdu_limits.A_ASSOCIATE_RQ:
            if data[0] == pdu_limits.A_ABORT:
                self._finish(sock, "closed before A-ASSOCIATE-RQ: A-ABORT from peer")
            else:
                self._finish(sock, f"aborted: PDU type 0x{data[0]:02X} before "
                             "A-ASSOCIATE-RQ", abort=pdu_limits.REASON_UNEXPECTED_PDU)
            return
        if len(data) < pdu_limits.PDU_HEADER:
            entry.waiting_for = _set_low_water(sock, pdu_limits.PDU_HEADER)
            return
        _, length = pdu_limits.parse_header(data[:pdu_limits.PDU_HEADER])
        if length > pdu_limits.MAX_ASSOCIATION_PDU:
            self._finish(sock, f"aborted: A-ASSOCIATE-RQ length {length} over the limit "
                         f"{pdu_limits.MAX_ASSOCIATION_PDU}")
            return
        total = pdu_limits.PDU_HEADER + length
        if len(data) < total:
            # wake only when all of it is there (or on close)
            entry.waiting_for = _set_low_water(sock, total)
            return
        if not _decodes(data[:total]):
            # pynetdicom would answer an undecodable request with an A-ABORT but then wait
            # out the ACSE timeout in the association thread, holding a slot
            self._finish(sock, f"aborted: A-ASSOCIATE-RQ of {length} bytes cannot be decoded")
            return
        entry = self._forget(sock)
        if entry is None:
            return
        _set_low_water(sock, 1)
        sock.settimeout(entry.timeout)
        try:
            self._hand_over(sock, entry.address)
        except Exception:
            log.exception("cannot start an association for %s", entry.peer)
            _close(sock)
            self._closed(entry.peer, "closed during negotiation: cannot start the association",
                         time.monotonic() - entry.started)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [sock for sock, entry in self._pending.items() if entry.deadline <= now]
        for sock in due:
            self._finish(sock, f"closed before A-ASSOCIATE-RQ: ARTIM timeout "
                         f"({self.limits.artim_timeout:g} s)")

    def _forget(self, sock: socket.socket) -> Pending | None:
        with self._lock:
            entry = self._pending.pop(sock, None)
            if entry is None:
                return None
            self._per_host[entry.host] -= 1
            if self._per_host[entry.host] <= 0:
                del self._per_host[entry.host]
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        return entry

    def _finish(self, sock: socket.socket, outcome: str, abort: int | None = None) -> None:
        """Close a pending connection (after an A-ABORT with `abort` as reason when given, or
        for outcomes starting 'aborted') and log it."""
        entry = self._forget(sock)
        if entry is None:
            return
        if abort is not None or outcome.startswith("aborted"):
            pdu_limits.send_abort(sock, abort or pdu_limits.REASON_INVALID_PARAMETER)
        _close(sock)
        self._closed(entry.peer, outcome, time.monotonic() - entry.started)

    def _close_all(self) -> None:
        with self._lock:
            socks = list(self._pending)
        for sock in socks:
            self._finish(sock, "closed before A-ASSOCIATE-RQ: the listener stopped")
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _decodes(request: bytes) -> bool:
    """Whether pynetdicom can decode this A-ASSOCIATE-RQ (its public PDU class)."""
    try:
        A_ASSOCIATE_RQ().decode(request)
    except Exception:
        return False
    return True


def _set_low_water(sock: socket.socket, count: int) -> int:
    """Make the socket readable only with `count` bytes (or at end of stream); returns the
    mark the kernel took (1 when it refused: then the gate looks at each arrival)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, count)
        return min(count, sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))
    except OSError:
        return 1


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
