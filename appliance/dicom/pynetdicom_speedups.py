"""Faster paths through pynetdicom 3: shorter waits in its polling loops for associations we
accept, and whole-PDU socket reads.

**Socket reads.** `AssociationSocket.recv(n)` reads a PDU 4096 bytes at a time, appending each
piece to a bytearray: 32 system calls and Python iterations for one 128 KB PDU, about 4,400 for
one 18 MB DX image. The replacement reads with `recv_into`, as much as the socket has each
time, into one buffer that grows (1 MiB at most per step) only as the bytes arrive, never to
the size a PDU header merely claims; it blocks, returns and fails exactly as before (a short
read when the peer closes, the socket's own exceptions). A header claiming more than we accept
(`pdu_limits`: our announced maximum for P-DATA, 64 KiB for the rest) is answered with an
A-ABORT and read as a closed connection.

**Polling loops.** pynetdicom 3 runs two polling loops per association: the DUL reactor sleeps
`_run_loop_delay` (1 ms) whenever there was nothing to do, and the association reactor sleeps a
fixed 1 ms between looks at the DIMSE queue. Every request/response pair therefore waits for up
to three poll periods (request noticed, handler started, response sent): about 1.5 ms per
C-STORE against well under 1 ms for a whole CT image in DCMTK.

This module gives those two loops (and only for acceptor associations; pynetdicom's other
sleeps and every requestor pass straight through) a `time` stand-in whose `sleep`:

* in the DUL reactor, waits in `select()` on the association's socket, so arriving data wakes
  it at once; while the association is busy (data or a response to send in the last
  `BUSY_WINDOW` seconds) it looks at its outgoing queue every `BUSY_POLL` seconds, otherwise
  at pynetdicom's own 1 ms, so an idle association costs what it did before;
* in the association reactor, waits on the DIMSE message queue, so a completely received
  request starts its handler at once, with pynetdicom's 1 ms as the longest wait (its release
  and abort checks keep their period).

Nothing else in pynetdicom changes: its state machines, queues and timeouts are untouched.
"""

from __future__ import annotations

import logging
import select
import threading
import time
import weakref

from pynetdicom import association as _association
from pynetdicom import dul as _dul
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.transport import AssociationSocket

from appliance.dicom import pdu_limits

log = logging.getLogger(__name__)

_REACTOR_PERIOD = 0.001  # the association reactor's fixed sleep in pynetdicom 3
#: Seconds after the last traffic during which the DUL reactor polls its outgoing queue often.
BUSY_WINDOW = 0.5
#: Poll period for the outgoing queue while busy (pynetdicom's own: 0.001).
BUSY_POLL = 0.0002


def _dul_wait(dul: DULServiceProvider, seconds: float) -> None:
    now = time.monotonic()
    if dul.to_provider_queue.qsize() or dul.event_queue.qsize():
        dul._edge_last_traffic = now
        return
    busy = now - getattr(dul, "_edge_last_traffic", 0.0) < BUSY_WINDOW
    raw = getattr(getattr(dul, "socket", None), "socket", None)
    if raw is None:
        time.sleep(seconds)
        return
    try:
        ready, _, _ = select.select([raw], [], [], BUSY_POLL if busy else seconds)
    except (TypeError, ValueError, OSError):  # the socket closed under us
        time.sleep(seconds)
        return
    if ready:
        dul._edge_last_traffic = time.monotonic()


def _reactor_wait(assoc: Association, seconds: float) -> None:
    msg_queue = assoc.dimse.msg_queue
    with msg_queue.not_empty:
        if not msg_queue._qsize():
            msg_queue.not_empty.wait(seconds)


class ReactorClock:
    """Stands in for the `time` module inside pynetdicom.dul and pynetdicom.association."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        try:
            if isinstance(thread, DULServiceProvider):
                if thread.assoc.is_acceptor and seconds == thread._run_loop_delay:
                    _dul_wait(thread, seconds)
                    return
            elif isinstance(thread, Association):
                if thread.is_acceptor and seconds == _REACTOR_PERIOD:
                    _reactor_wait(thread, seconds)
                    return
        except AttributeError:  # a pynetdicom without the attributes we rely on
            pass
        time.sleep(seconds)


#: Largest buffer step: a PDU body is read into a buffer that grows by at most this much at a
#: time, and only once the bytes before it have arrived.
READ_STEP = 2**20
#: PDU bodies the read path expects next, per socket (set when a header was read).
_expected_bodies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _announced_maximum(assoc) -> int | None:
    """The Maximum Length Received we announced on this association (0 = no limit)."""
    local = assoc.acceptor if assoc.is_acceptor else assoc.requestor
    return local.maximum_length


def _refuse(self: AssociationSocket, pdu_type: int, length: int, limit: int) -> bytearray:
    """A-ABORT a PDU longer than allowed; the short read makes pynetdicom close the
    connection as the peer's (it has no event for "local provider aborts")."""
    assoc = self.assoc
    if pdu_type == pdu_limits.P_DATA_TF:
        outcome = f"aborted: P-DATA-TF length {length} over announced max {limit}"
    else:
        outcome = f"aborted: PDU type 0x{pdu_type:02X} length {length} over the limit {limit}"
    log.warning("association from %s %s", getattr(assoc.requestor, "address", "?"), outcome)
    pdu_limits.refusals.note(assoc, outcome)
    pdu_limits.send_abort(self.socket)
    return bytearray()


def recv_whole(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """AssociationSocket.recv: `nr_bytes` from the socket (fewer only if the peer closed, or
    when a PDU header claims more than we accept: then the peer gets an A-ABORT and we
    return nothing, so pynetdicom sees the connection closed)."""
    expected = _expected_bodies.pop(self, None)
    buffer = _read(self.socket, nr_bytes)
    if expected is None and nr_bytes == pdu_limits.PDU_HEADER and len(buffer) == nr_bytes:
        pdu_type, length = pdu_limits.parse_header(buffer)
        if pdu_type not in pdu_limits.PDU_TYPES:
            return buffer  # pynetdicom aborts an unknown PDU without reading its body
        limit = pdu_limits.pdu_limit(pdu_type, _announced_maximum(self.assoc))
        if limit is not None and length > limit:
            return _refuse(self, pdu_type, length, limit)
        _expected_bodies[self] = length
    return buffer


def _read(sock, nr_bytes: int) -> bytearray:
    """Read `nr_bytes` into a buffer grown (by `READ_STEP` at most) as data arrives."""
    buffer = bytearray(min(nr_bytes, READ_STEP))
    nr_read = 0
    while nr_read < nr_bytes:
        if nr_read == len(buffer):
            buffer.extend(bytes(min(READ_STEP, nr_bytes - nr_read)))
        with memoryview(buffer) as view:
            count = sock.recv_into(view[nr_read:], len(buffer) - nr_read)
        if not count:
            del buffer[nr_read:]
            return buffer
        nr_read += count
    return buffer


_installed = False


def install() -> None:
    """Put the stand-ins into pynetdicom (idempotent)."""
    global _installed
    if _installed:
        return
    clock = ReactorClock()
    _dul.time = clock
    _association.time = clock
    install_reader()
    _installed = True
    log.debug("pynetdicom acceptor reactors wake on traffic; sockets read whole PDUs")


def install_reader() -> None:
    """Only the bounded whole-PDU socket read (the DICOM server needs it whatever the
    services; idempotent)."""
    AssociationSocket.recv = recv_whole
