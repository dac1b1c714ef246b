"""How long a PDU from a peer may be, and the A-ABORT that refuses a longer one.

A PDU header (PS3.8 9.3: type, reserved, 4-byte length) is the peer's word only. Nothing is
allocated on that word: a P-DATA-TF PDU may be as long as the Maximum Length Received we
announced (plus `PDU_SLACK` for peers that count the PDV headers differently), every other PDU
type (A-ASSOCIATE-RQ/AC/RJ, A-RELEASE, A-ABORT) at most `MAX_ASSOCIATION_PDU`; a longer one is
answered with an A-ABORT (source: service provider, reason: invalid PDU parameter value, PS3.8
9.3.8) and the connection is closed. Shared by the socket read path (pynetdicom_speedups) and
the pre-negotiation gate (connection_gate), and by the association log, which says why.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import weakref

log = logging.getLogger(__name__)

PDU_HEADER = 6
A_ASSOCIATE_RQ, P_DATA_TF, A_ABORT = 0x01, 0x04, 0x07
#: The PDU types of PS3.8 9.3 (A-ASSOCIATE-RQ to A-ABORT).
PDU_TYPES = frozenset(range(0x01, 0x08))
#: Longest non-P-DATA PDU accepted (an A-ASSOCIATE-RQ proposing 128 contexts with a few
#: transfer syntaxes each and a user identity is well under 32 KiB).
MAX_ASSOCIATION_PDU = 65536
#: Bytes a P-DATA-TF PDU may exceed our announced maximum by (PDU and PDV item headers).
PDU_SLACK = 12
#: A-ABORT source: DICOM UL service-provider; reasons (PS3.8 table 9-26).
SOURCE_PROVIDER = 0x02
REASON_UNEXPECTED_PDU = 0x02
REASON_INVALID_PARAMETER = 0x06


def parse_header(header: bytes) -> tuple[int, int]:
    """(PDU type, length) of a 6-byte PDU header."""
    pdu_type, _, length = struct.unpack(">BBL", header)
    return pdu_type, length


def pdu_limit(pdu_type: int, announced: int | None) -> int | None:
    """Longest PDU body accepted of this type, given our announced Maximum Length Received
    (0 or None = no limit announced: P-DATA then is not limited, only read as it arrives)."""
    if pdu_type != P_DATA_TF:
        return MAX_ASSOCIATION_PDU
    if not announced:
        return None
    return announced + PDU_SLACK


def abort_pdu(reason: int = REASON_INVALID_PARAMETER) -> bytes:
    """An A-ABORT PDU from the service provider with `reason`."""
    return struct.pack(">BBLBBBB", A_ABORT, 0, 4, 0, 0, SOURCE_PROVIDER, reason)


def send_abort(sock: socket.socket, reason: int = REASON_INVALID_PARAMETER) -> None:
    """Send an A-ABORT and shut the connection down (both directions); errors are ignored:
    the peer may already be gone."""
    try:
        sock.settimeout(1.0)
        sock.sendall(abort_pdu(reason))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class RefusalNotes:
    """Why an association's connection was ended by us, for its association log line
    (keyed by the pynetdicom Association, forgotten with it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def note(self, assoc, outcome: str) -> None:
        with self._lock:
            self._notes[assoc] = outcome

    def pop(self, assoc) -> str | None:
        with self._lock:
            return self._notes.pop(assoc, None)


#: The one set of notes: written by the socket read path, read by the association log.
refusals = RefusalNotes()
