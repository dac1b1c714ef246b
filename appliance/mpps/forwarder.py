"""The MPPS forwarder component ("mpps-forwarder"): sends the queued N-CREATEs and N-SETs
(queue.py) to the RIS peers of `[mpps] forward_to`, as an MPPS SCU (pynetdicom).

One worker thread per peer. Each round takes the first waiting row of every procedure step
that is due (so a step's N-SET never goes before its N-CREATE was answered), sends them over one
association, and goes on with the rows that became first, until none is due. A row is deleted
once the peer answers Success or a Warning; an N-CREATE answered 0x0111 (Duplicate SOP
Instance: the RIS has the step already, e.g. our earlier send reached it but its answer did
not reach us) counts as delivered too. Any other status, no association, a timeout or an abort
leaves the row, counts an attempt, records the error and puts the next attempt off by
`[mpps] retry_initial`, doubling up to `retry_max`; the step's later rows wait behind it.
The queue is in the database: a restart carries on where the last run stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from io import BytesIO
from pathlib import Path

from pydicom.uid import UID
from pynetdicom.dsutils import decode
from pynetdicom.sop_class import ModalityPerformedProcedureStep
from pynetdicom.status import code_to_category

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_association import PeerUnreachable, associate_peer, peer_target
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import Timeouts, scu_ae
from appliance.mpps.attributes import DUPLICATE_INSTANCE
from appliance.mpps.queue import N_CREATE, ForwardQueue, ForwardRow
from appliance.mpps.scp import TRANSFER_SYNTAXES
from appliance.mpps.store import MIGRATIONS
from appliance.store.database import Database

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds between looks at the queue when nothing is due
MPPS = ModalityPerformedProcedureStep


class NoAssociation(ConnectionError):
    """No association with the peer (its message says why)."""


class PeerWorker:
    """Sends one peer's rows; `pending` and `sent` for the status line."""

    def __init__(self, db: Database, peer: PeerConfig, calling_aet: str,
                 tls: DicomTlsConfig | None, config: ApplianceConfig):
        self.queue = ForwardQueue(db)
        self.peer = peer
        self.calling_aet = calling_aet
        self.tls = tls
        self.settings = config.mpps
        self.timeouts = Timeouts.of_dicom(config.dicom)
        self.sent = 0
        self.pending = 0
        self.wake = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"mpps-forward:{peer.name}",
                                       daemon=True)

    @property
    def name(self) -> str:
        return self.peer.name

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self.wake.set()
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.step()
                self.pending = self.queue.pending(self.name)
            except Exception:  # e.g. the database briefly busy: log, wait, carry on
                log.exception("MPPS forward worker for %s", self.name)
                delay = IDLE_POLL
            if delay > 0:
                self.wake.wait(delay)
                self.wake.clear()

    def step(self) -> float:
        """One round; returns how long to wait before the next."""
        heads = self.queue.heads(self.name)
        if not heads:
            next_due = self.queue.next_due_at(self.name)
            if next_due is None:
                return IDLE_POLL
            return max(0.05, min(next_due - time.time(), IDLE_POLL))
        try:
            assoc = self._associate()
        except NoAssociation as exc:
            for row in heads:
                self._failed(row, str(exc))
            return 0.0
        try:
            while heads and assoc.is_established and not self._stop.is_set():
                for row in heads:
                    self._send(assoc, row)
                    if not assoc.is_established:
                        break
                heads = self.queue.heads(self.name)
        finally:
            if assoc.is_established:
                assoc.release()
        return 0.0

    def _associate(self):
        peer = self.peer
        ae = scu_ae(self.calling_aet, self.timeouts)
        ae.add_requested_context(MPPS, TRANSFER_SYNTAXES)
        try:
            assoc = associate_peer(ae, peer, self.tls)
        except PeerUnreachable as exc:
            raise NoAssociation(str(exc)) from exc
        if not assoc.accepted_contexts:
            assoc.release()
            raise NoAssociation(f"{self.target}: does not accept the MPPS SOP class")
        return assoc

    @property
    def target(self) -> str:
        return peer_target(self.peer)

    def _send(self, assoc, row: ForwardRow) -> None:
        syntax = UID(row.transfer_syntax)
        try:
            ds = decode(BytesIO(row.data), syntax.is_implicit_VR, syntax.is_little_endian)
            if row.operation == N_CREATE:
                status, _ = assoc.send_n_create(ds, MPPS, row.sop_instance_uid)
            else:
                status, _ = assoc.send_n_set(ds, MPPS, row.sop_instance_uid)
        except Exception as exc:  # a data set pynetdicom cannot send: keep it, say why
            log.exception("MPPS %s %s to %s", row.operation, row.sop_instance_uid, self.name)
            self._failed(row, f"cannot send: {exc}")
            return
        code = getattr(status, "Status", None)
        if code is None:
            self._failed(row, f"no {row.operation} response from {self.target} (timed out or "
                         "aborted)")
            return
        comment = str(status.get("ErrorComment", "") or "")
        answer = f"0x{code:04X}" + (f" ({comment})" if comment else "")
        if code_to_category(code) in ("Success", "Warning"):
            log.info("MPPS %s %s forwarded to %s (%s)", row.operation, row.sop_instance_uid,
                     self.name, answer)
        elif row.operation == N_CREATE and code == DUPLICATE_INSTANCE:
            log.info("MPPS N-CREATE %s: %s answered %s Duplicate SOP Instance: it has it "
                     "already, counted as delivered", row.sop_instance_uid, self.name, answer)
        else:
            self._failed(row, f"{self.target} answered {row.operation} status {answer}")
            return
        self.queue.delivered(row.seq)
        self.sent += 1

    def _failed(self, row: ForwardRow, error: str) -> None:
        delay = self.queue.failed(row, error, self.settings.retry_initial,
                                  self.settings.retry_max)
        log.warning("MPPS %s %s to %s failed (attempt %d): %s; next try in %.0fs",
                    row.operation, row.sop_instance_uid, self.name, row.attempts + 1, error,
                    delay)


class MppsForwarder(Component):
    """One PeerWorker per `[mpps] forward_to` peer. `service` (the MPPS SCP) is given each new
    configuration, so a reload's forward_to applies to the next request."""

    name = "mpps-forwarder"

    def __init__(self, config: ApplianceConfig, service=None):
        self.service = service
        self.workers: list[PeerWorker] = []
        self.db: Database | None = None
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.data_dir = Path(config.device.data_dir).absolute()
        peers = [config.peer(name) for name in config.mpps.forward_to]
        self.settings = (config.mpps, peers, config.dicom, self.data_dir)
        if self.service is not None:
            self.service.configure(config)

    def reconfigure(self, config: ApplianceConfig) -> None:
        self.restart_if_changed(config)

    def start(self) -> None:
        if not self.config.mpps.forward_to:
            return
        try:
            self.db = Database.in_data_dir(self.data_dir)
            self.db.migrate(MIGRATIONS)
        except Exception as exc:
            raise ComponentFailure(f"cannot open the MPPS forward queue: {exc}") from exc
        self.workers = []
        for name in self.config.mpps.forward_to:
            peer = self.config.peer(name)
            worker = PeerWorker(self.db, peer, self.config.dicom.ae_title,
                                self.config.tls_for(peer), self.config)
            worker.pending = worker.queue.pending(name)
            worker.start()
            self.workers.append(worker)
        log.info("MPPS forwarding to %s", ", ".join(w.name for w in self.workers))

    def stop(self, timeout: float) -> None:
        for worker in self.workers:
            worker.stop(timeout)
        self.workers = []
        if self.db is not None:
            self.db.close()
            self.db = None

    def check(self) -> None:
        for worker in self.workers:
            if not worker.is_alive():
                raise ComponentFailure(f"MPPS forward worker for {worker.name} stopped")

    def status(self) -> str:
        if not self.workers:
            return "no forward_to peers"
        return "; ".join(f"{w.name}: {w.pending} pending, {w.sent} sent" for w in self.workers)
