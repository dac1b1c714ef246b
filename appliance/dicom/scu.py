"""The one way the appliance requests an association as an SCU: `appliance echo`, the
forwarder, the upstream worklist, the MPPS forwarder, the Storage Commitment reporter, the
C-MOVE sub-operations and the DICOM printer all open theirs here, with pynetdicom's public API.

Every association gets all four timeouts (connection, ACSE, DIMSE, network), TCP_NODELAY on
its socket (sockets.py), TLS from `[dicom.tls]` (tls_client.py) when the peer has `tls = true`,
and optionally a largest PDU we receive. When there is no association, AssociationFailed says
why in one sentence a technician can act on: connection refused, no answer in time, a TLS
handshake that failed, the A-ASSOCIATE-RJ's reason in the standard's words (`rejection_reason`,
the same sentence in the logs, `appliance echo` and the web page), or an abort.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pynetdicom import AE, evt
from pynetdicom.association import Association

from appliance.config.schema import DicomTlsConfig
from appliance.core.errors import ApplianceError
from appliance.dicom.sockets import SCU_HANDLERS
from appliance.dicom.tls_client import tls_args
from appliance.dicom.tls_files import TlsFileError

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ fields (PS3.8 9.3.4, Table 9-21), worded as pynetdicom words them.
_RESULTS = {1: "rejected permanent", 2: "rejected transient"}
_SOURCES = {1: "service user", 2: "service provider (acse)",
            3: "service provider (presentation)"}
_REASONS = {
    1: {1: "no reason given", 2: "application context name not supported",
        3: "calling AE title not recognised", 7: "called AE title not recognised"},
    2: {1: "no reason given", 2: "protocol version not supported"},
    3: {1: "temporary congestion", 2: "local limit exceeded"},
}


def rejection_reason(result: int | None, source: int | None, reason: int | None) -> str:
    """The sentence for an A-ASSOCIATE-RJ: 'called AE title not recognised (rejected
    permanent, service user)'; 'rejected' when the fields are not a rejection."""
    if result not in _RESULTS:
        return "rejected"
    why = _REASONS.get(source, {}).get(reason, f"reason {reason}")
    return f"{why} ({_RESULTS[result]}, {_SOURCES.get(source, f'source {source}')})"


@dataclass(frozen=True)
class Timeouts:
    """Seconds an SCU waits: for the TCP connection, the association answer (ACSE), each
    DIMSE message, and on an idle connection (network)."""

    connection: float
    acse: float
    dimse: float
    network: float

    @classmethod
    def all(cls, seconds: float) -> Timeouts:
        return cls(seconds, seconds, seconds, seconds)

    @classmethod
    def of_dicom(cls, dicom) -> Timeouts:
        """From `[dicom]`: connect and associate within acse_timeout; wait dimse_timeout for
        each answer (also the idle limit: an SCU's association idles only while it waits)."""
        return cls(dicom.acse_timeout, dicom.acse_timeout, dicom.dimse_timeout,
                   dicom.dimse_timeout)


class AssociationFailed(ApplianceError, ConnectionError):
    """No association; the message says why in words (`rejected`: the peer sent an
    A-ASSOCIATE-RJ)."""

    def __init__(self, reason: str, rejected: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.rejected = rejected


def scu_ae(calling_aet: str, timeouts: Timeouts, max_pdu: int | None = None) -> AE:
    """An AE to request associations with, its timeouts set (`max_pdu`: the largest PDU we
    receive, 0 for no limit, announced by `associate`; None keeps pynetdicom's 16382). Add its
    contexts, then `associate`."""
    ae = AE(ae_title=calling_aet)
    ae.connection_timeout = timeouts.connection
    ae.acse_timeout = timeouts.acse
    ae.dimse_timeout = timeouts.dimse
    ae.network_timeout = timeouts.network
    if max_pdu is not None:
        ae.maximum_pdu_size = max_pdu
    return ae


class _ConnectErrors(logging.Handler):
    """Catches pynetdicom's 'TCP Initialisation Error' log line, the only place it reports why
    a connection failed, so the reason can be told to the user."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_thread: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("TCP Initialisation Error: "):
            self.by_thread[record.thread] = message.split(": ", 1)[1]


_transport_lock = threading.Lock()


def associate(ae: AE, host: str, port: int, called_aet: str, *,
              tls: DicomTlsConfig | ssl.SSLContext | None = None,
              ext_neg: list | None = None,
              evt_handlers: Iterable[tuple] = ()) -> Association:
    """`ae`'s established association with `called_aet` at host:port (over TLS with `tls`,
    `[dicom.tls]` or a client context; `ext_neg`: extended negotiation items such as role
    selection; `evt_handlers` bound besides TCP_NODELAY's), else AssociationFailed."""
    try:
        secure = (tls, host) if isinstance(tls, ssl.SSLContext) else tls_args(tls, host)
    except TlsFileError as exc:
        raise AssociationFailed(f"TLS: {exc}") from exc
    connected = threading.Event()
    handlers = [*SCU_HANDLERS, *evt_handlers, (evt.EVT_CONN_OPEN, lambda event: connected.set())]
    catcher = _ConnectErrors()
    transport_log = logging.getLogger("pynetdicom.transport")
    with _transport_lock:
        transport_log.addHandler(catcher)
    started = time.monotonic()
    try:
        assoc = ae.associate(host, port, ae_title=called_aet, evt_handlers=handlers,
                             tls_args=secure, ext_neg=ext_neg,
                             max_pdu=ae.maximum_pdu_size)
    except socket.gaierror as exc:
        raise AssociationFailed(f"unknown host name {host!r}") from exc
    except (OSError, ValueError) as exc:
        raise AssociationFailed(f"cannot connect: {exc}") from exc
    finally:
        with _transport_lock:
            transport_log.removeHandler(catcher)
    if assoc.is_established:
        return assoc
    answer = assoc.acceptor.primitive if assoc.is_rejected else None
    raise association_failure(
        rejected=(getattr(answer, "result", None), getattr(answer, "result_source", None),
                  getattr(answer, "diagnostic", None)) if assoc.is_rejected else None,
        connected=connected.is_set(),
        error=catcher.by_thread.get(assoc.dul.ident) or next(iter(catcher.by_thread.values()),
                                                             ""),
        elapsed=time.monotonic() - started,
        connect_timeout=ae.connection_timeout or ae.acse_timeout,
        acse_timeout=ae.acse_timeout, tls=tls is not None)


def association_failure(*, rejected: tuple | None, connected: bool, error: str,
                        elapsed: float, connect_timeout: float, acse_timeout: float,
                        tls: bool = False) -> AssociationFailed:
    """Why an association request came to nothing, in the one sentence every SCU tells
    (pynetdicom's here, the native engine's in store_association.py): `rejected` the
    A-ASSOCIATE-RJ's (result, source, reason); else `connected` says whether the TCP connection
    was made, `error` the transport's words, `elapsed` how long the request took."""
    if rejected is not None:
        return AssociationFailed("association rejected: " + rejection_reason(*rejected),
                                 rejected=True)
    if not connected:
        return AssociationFailed(_connect_reason(error, connect_timeout, tls))
    if elapsed >= acse_timeout * 0.95:
        return AssociationFailed(f"connected, but no association response within "
                                 f"{acse_timeout:g} s (ACSE timeout)")
    hint = " (over TLS: does it accept our certificate's CA?)" if tls else ""
    return AssociationFailed("connected, but the peer aborted or closed the connection "
                             f"without answering the association request{hint}")


def _connect_reason(error: str, timeout: float, tls: bool = False) -> str:
    lowered = error.lower()
    if "certificate verify failed" in lowered:
        return ("TLS: the peer's certificate was not accepted (is its CA in [dicom.tls] "
                f"ca_certificates?): {error}")
    if tls and any(sign in lowered for sign in ("wrong version number", "unexpected eof",
                                                "reset by peer", "eof occurred")):
        return f"TLS handshake failed (does the peer speak TLS on that port?): {error}"
    if "[ssl" in lowered:
        return f"TLS handshake failed: {error}"
    if "refused" in lowered:
        return "connection refused (nothing listening on that port)"
    if "timed out" in lowered or "timeout" in lowered:
        return f"no answer to the connection within {timeout:g} s (host down or filtered?)"
    if any(sign in lowered for sign in ("name or service not known", "nodename nor servname",
                                        "unknown host")):
        return "unknown host name"
    if "unreachable" in lowered:
        return "network unreachable"
    return f"cannot connect: {error}" if error else "cannot connect"
