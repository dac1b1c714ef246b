"""The DICOM server component: one pynetdicom AE listening on one port for every service.

Services (Verification now; Storage, Print and Worklist later) are small objects that give
their presentation contexts and event handlers; this module owns the listener, the
association policy (called AE title, calling-AE allowlist, association limit, timeouts, PDU
size, the pre-negotiation gate of `connection_gate`), TCP_NODELAY on every accepted socket,
the association log, graceful stop and live reconfiguration. pynetdicom itself sends the
A-ASSOCIATE-RJ with the standard's reason.
"""

from __future__ import annotations

import copy
import logging
import socketserver
import threading
import time
from typing import Protocol

from pynetdicom import AE, evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import ThreadedAssociationServer

from appliance.component import Component
from appliance.config.schema import ApplianceConfig, DicomConfig
from appliance.dicom import pynetdicom_speedups
from appliance.dicom.association_log import AssociationLog
from appliance.dicom.connection_gate import ConnectionGate, GateLimits
from appliance.dicom.sockets import set_nodelay
from appliance.errors import ComponentFailure
from appliance.events import EventBus

log = logging.getLogger(__name__)

#: pynetdicom's own logging handlers, bound to every association (see `_skip_unused_logging`).
PYNETDICOM_LOG_HANDLERS = [(evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
                           (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
                           (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
                           (evt.EVT_PDU_SENT, standard_pdu_sent_handler)]


def _skip_unused_logging(event) -> None:
    """pynetdicom's logging handlers describe every PDU and DIMSE message (about 0.1 ms of
    each C-FIND answer) but write only at INFO and DEBUG, which the pynetdicom logger passes
    only when the appliance logs at DEBUG (logsetup): unless it does, unbind them from the new
    association. Decided per association, so a reload to DEBUG applies to the next one."""
    if logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        return
    for event_type, handler in PYNETDICOM_LOG_HANDLERS:
        event.assoc.unbind(event_type, handler)


class DicomService(Protocol):
    """What a DICOM service plugs into the server. A service may also offer
    `extra_ae_titles() -> list[str]`: further called AE titles it answers to (the print
    service's printer profiles), accepted even with strict called-AE checking."""

    name: str

    def contexts(self) -> list[PresentationContext]: ...

    def handlers(self) -> list[tuple]: ...


class CopiedContexts(list):
    """The server's supported presentation contexts. pynetdicom deep-copies them for every
    association it accepts: with our 177 contexts (6,646 transfer syntax entries, mostly
    Storage) ~30 ms of CPU and ~7,500 objects left for the cyclic garbage collector per
    association. This copy gives each association its own context objects and transfer syntax
    lists, as the deep copy does, sharing only the immutable UID strings and flags."""

    #: PresentationContext's attributes in pynetdicom 3; anything else gets a real deep copy.
    PLAIN = frozenset({"_context_id", "_abstract_syntax", "_transfer_syntax", "result",
                       "_scu_role", "_scp_role", "_as_scp", "_as_scu"})

    def __deepcopy__(self, memo: dict) -> list:
        copied = []
        for context in self:
            if not set(vars(context)) <= self.PLAIN:
                copied.append(copy.deepcopy(context, memo))
                continue
            twin = copy.copy(context)
            twin._transfer_syntax = list(context._transfer_syntax)
            copied.append(twin)
        return copied


class EdgeAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with TCP_NODELAY set on each socket as it is accepted,
    cheap copies of the supported contexts for each association (`CopiedContexts`), and the
    pre-negotiation gate (`ConnectionGate`) between accepting a connection and giving it an
    association thread (socketserver's `process_request` hook)."""

    #: Set by DicomServer after construction: where gate-closed connections are logged.
    association_log: AssociationLog | None = None
    #: Listen backlog (socketserver's 5 drops a modality's SYN while a flood is accepted).
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.contexts = CopiedContexts(self.contexts)
        self.gate = ConnectionGate(GateLimits(), self._start_association, self._gate_closed,
                                   self._sweep_log)

    def get_request(self):
        client, address = super().get_request()
        set_nodelay(client)
        return client, address

    def process_request(self, request, client_address) -> None:
        if self.ssl_context is not None:  # TLS: the gate cannot peek through it
            super().process_request(request, client_address)
            return
        self.gate.admit(request, client_address)

    def _start_association(self, request, client_address) -> None:
        """The gate's hand-over: the whole A-ASSOCIATE-RQ is waiting in the socket."""
        super().process_request(request, client_address)

    def _gate_closed(self, peer: str, outcome: str, duration: float) -> None:
        if self.association_log is not None:
            self.association_log.closed(peer, outcome, duration)

    def _sweep_log(self) -> None:
        if self.association_log is not None:
            self.association_log.sweep()

    def shutdown(self) -> None:
        # Stop accepting and close the listening socket; associations in flight carry on.
        # (pynetdicom's own shutdown also expects the AE to have started the server thread.)
        socketserver.BaseServer.shutdown(self)
        self.server_close()
        self.gate.stop()


class DicomServer(Component):
    """The listener. Essential: the box is useless without it."""

    name = "dicom"
    essential = True

    def __init__(self, config: ApplianceConfig, services: list[DicomService],
                 bus: EventBus | None = None):
        self.services = services
        self.association_log = AssociationLog(bus)
        self.ae = AE()
        for service in services:
            for context in service.contexts():
                self.ae.add_supported_context(context.abstract_syntax, context.transfer_syntax)
        self.server: EdgeAssociationServer | None = None
        self._thread: threading.Thread | None = None
        self.configure(config)

    # -- configuration ----------------------------------------------------------------------

    def configure(self, config: ApplianceConfig) -> None:
        self.settings: DicomConfig = config.dicom
        self._apply_policy()

    def _apply_policy(self) -> None:
        """Everything pynetdicom reads per association: applies live to new associations."""
        s = self.settings
        self.ae.ae_title = s.ae_title
        self.ae.require_called_aet = s.strict_called_aet
        self.ae.require_calling_aet = list(s.allowed_calling_aets)
        self.ae.maximum_associations = s.max_associations
        self.ae.acse_timeout = s.acse_timeout
        self.ae.dimse_timeout = s.dimse_timeout
        self.ae.network_timeout = s.network_timeout
        self.ae.maximum_pdu_size = s.max_pdu
        if self.server is not None:
            self.server.ae_title = s.ae_title
            self.server.gate.limits = self._gate_limits()

    def _gate_limits(self) -> GateLimits:
        s = self.settings
        return GateLimits(artim_timeout=s.artim_timeout, max_pending=s.max_pending_connections,
                          max_pending_per_host=s.max_pending_per_host)

    def reconfigure(self, config: ApplianceConfig) -> None:
        old = self.settings
        self.configure(config)
        new = self.settings
        if (new.bind, new.port) != (old.bind, old.port):
            log.info("DICOM listener moving from %s:%d to %s:%d", old.bind, old.port,
                     new.bind, new.port)
            previous, previous_thread = self.server, self._thread
            self.server = self._thread = None
            self.start()  # bind the new port first: if that fails we raise and get restarted
            if previous is not None:
                threading.Thread(target=self._drain, args=(previous, previous_thread, 30.0),
                                 name="dicom-drain", daemon=True).start()
        elif new != old:
            log.info("DICOM policy updated: AE title %s, strict called AE %s, %d allowed callers",
                     new.ae_title, new.strict_called_aet, len(new.allowed_calling_aets))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        handlers = [(evt.EVT_CONN_OPEN, _skip_unused_logging),
                    (evt.EVT_REQUESTED, self._answer_as_called_aet),
                    *self.association_log.handlers()]
        for service in self.services:
            handlers.extend(service.handlers())
        try:
            server = self.ae.make_server(
                (s.bind, s.port), ae_title=s.ae_title, evt_handlers=handlers,
                server_class=EdgeAssociationServer)
        except OSError as exc:
            raise ComponentFailure(
                f"cannot listen on {s.bind}:{s.port}: {exc.strerror or exc}") from exc
        pynetdicom_speedups.install_reader()  # never allocate a PDU on the peer's word
        server.association_log = self.association_log
        server.gate.limits = self._gate_limits()
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                  name=f"dicom-listener:{s.port}", daemon=True)
        thread.start()
        self.server, self._thread = server, thread
        log.info("DICOM listener on %s:%d as %s", s.bind, self.port, s.ae_title)

    def extra_ae_titles(self) -> set[str]:
        """Called AE titles we answer to besides our own, as the services offer them now."""
        titles: set[str] = set()
        for service in self.services:
            offer = getattr(service, "extra_ae_titles", None)
            if offer is not None:
                titles.update(title.strip() for title in offer())
        return titles

    def _answer_as_called_aet(self, event) -> None:
        """EVT_REQUESTED runs before pynetdicom's acceptor negotiation: when the peer calls
        one of our extra AE titles, answer as that title, so pynetdicom's strict check accepts
        it (and the services see which title was called) while any other title is refused."""
        called = event.assoc.requestor.primitive.called_ae_title.strip()
        if called != self.settings.ae_title and called in self.extra_ae_titles():
            event.assoc.acceptor.ae_title = called

    @property
    def port(self) -> int:
        """The port actually bound (differs from the configured one only for port 0)."""
        if self.server is None:
            return self.settings.port
        return self.server.server_address[1]

    def check(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise ComponentFailure("DICOM listener thread stopped")

    def status(self) -> str:
        s = self.settings
        return f"{s.ae_title}@{s.bind}:{self.port}"

    def stop(self, timeout: float) -> None:
        server, thread = self.server, self._thread
        self.server = self._thread = None
        if server is not None:
            self._drain(server, thread, timeout)

    def _drain(self, server: EdgeAssociationServer, thread: threading.Thread | None,
               timeout: float) -> None:
        """Stop accepting, give open associations `timeout` seconds to finish, then abort them."""
        server.shutdown()
        if thread is not None:
            thread.join(timeout=2.0)
        deadline = time.monotonic() + timeout
        while server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        leftover = server.active_associations
        for assoc in leftover:
            log.warning("aborting association from %s (%s) still open after %.0fs",
                        assoc.requestor.address, assoc.requestor.ae_title, timeout)
            assoc.abort()
        for assoc in leftover:
            assoc.join(timeout=2.0)
