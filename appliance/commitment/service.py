"""The Storage Commitment Push Model SCP ("storage-commitment"): a supervised component and a
DICOM service on the server's one AE (served by the native engine through
appliance.dicom.engine_dispatch).

The N-ACTION is checked (request.py), kept (store.py) and answered at once; one worker thread
then decides its instances (checker.py), ends a transaction still pending after
`[storage_commitment] timeout_hours` with failures for what is undecided, and sends each
decided transaction's N-EVENT-REPORT (reporter.py): on the requester's association while it is
open (counted as sent once the requester has answered it; one the association's end left
undelivered goes on at once), else on a new association to its `[[peers]]` entry; a report that
cannot be sent (no such peer, peer down) is kept, logged, shown, and tried again with a
doubling wait up to 10 minutes.
An instance the DICOM engine received comes with its content hash recorded (the engine hashes
while writing, `EngineSettings.hash_content`, on while this service is enabled); a hasher
thread (hashes.py) takes that of any other stored instance right after the store reports it
(the "storage" event without `content_hashed`), off the C-STORE ack path.

`[storage_commitment] enabled = false` leaves the context out of negotiation (read when the
DICOM server starts) and the component idle.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt

from appliance.commitment import checker, reporter
from appliance.commitment.hashes import Hasher
from appliance.commitment.request import (
    PROCESSING_FAILURE,
    SOP_CLASS,
    WELL_KNOWN_INSTANCE,
    CommitmentRefusal,
    parse,
)
from appliance.commitment.store import CommitmentStore, Transaction
from appliance.config.schema import ApplianceConfig
from appliance.core.backoff import backoff_delay
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.dicom.declared_context import DeclaredContext, declare
from appliance.dicom.dimse_status import is_success_or_warning
from appliance.store.instances import INSTANCES_DIR, open_database

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
POLL = 1.0                    # seconds between looks at pending transactions
RETRY_INITIAL, RETRY_MAX = 5.0, 600.0
#: A report sent on the requester's association waits this long for its answer before it is
#: sent again (the association's end, answered or not, decides sooner; a restart at once).
ANSWER_HOLD = 3600.0
AWAITING_ANSWER = "sent on its association, waiting for the requester's answer"


class CommitmentService(Component):
    """Storage Commitment SCP: contexts, the N-ACTION handler, the worker and the hasher."""

    name = "storage-commitment"

    def __init__(self, config: ApplianceConfig, bus: EventBus | None = None):
        self.store: CommitmentStore | None = None
        self.hasher: Hasher | None = None
        self.reported = 0
        self._open: dict[int, object] = {}      # engine association id -> its view
        self._attempts: dict[int, int] = {}     # transaction id -> failed report attempts
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.configure(config)
        if bus is not None:
            bus.subscribe(self._storage_event, Topic.STORAGE)

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.settings = config.storage_commitment
        self.data_dir = Path(config.device.data_dir).absolute()

    def reconfigure(self, config: ApplianceConfig) -> None:
        """`commit_when` and `timeout_hours` apply at the next check; waiting reports are tried
        again at once (with the new peers); another data directory (or `enabled`) restarts
        the component."""
        old = (self.data_dir, self.settings.enabled)
        self.configure(config)
        if (self.data_dir, self.settings.enabled) != old:
            self.stop(10.0)
            self.start()
        elif self.store is not None:
            self.store.retry_reports()
        self._wake.set()

    # -- component ----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.settings.enabled:
            return
        try:
            db = open_database(self.data_dir)
        except Exception as exc:
            raise ComponentFailure(f"cannot open the commitment tables: {exc}") from exc
        self.store = CommitmentStore(db)
        self.store.retry_reports()  # a report awaiting its answer when we stopped: again
        self.hasher = Hasher(db, self.data_dir / INSTANCES_DIR)
        self.hasher.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="storage-commitment",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.hasher is not None:
            self.hasher.stop(timeout)
            self.hasher = None
        store, self.store = self.store, None
        if store is not None:
            store.db.close()

    def check(self) -> None:
        if not self.settings.enabled:
            return
        if self._thread is None or not self._thread.is_alive():
            raise ComponentFailure("the storage commitment worker stopped")
        if self.hasher is None or not self.hasher.is_alive():
            raise ComponentFailure("the content hash thread stopped")

    def status(self) -> str:
        if not self.settings.enabled:
            return "disabled"
        store = self.store
        if store is None:
            return "not running"
        counts = store.counts()
        return (f"{counts['pending']} pending, {counts['unreported']} report(s) waiting, "
                f"{self.reported} reported since start")

    def wake(self) -> None:
        """Look at the transactions now rather than at the next poll."""
        self._wake.set()

    def _storage_event(self, event) -> None:
        hasher = self.hasher
        if hasher is not None and event.data.get("kind") in ("stored", "replaced") \
                and not event.data.get("content_hashed"):  # the engine's hash is recorded
            hasher.stored(event.data["instance_id"])

    # -- DICOM service ------------------------------------------------------------------------

    def contexts(self) -> list[DeclaredContext]:
        if not self.settings.enabled:
            return []
        return [declare(SOP_CLASS, TRANSFER_SYNTAXES)]

    def handlers(self) -> list[tuple]:
        return [(evt.EVT_N_ACTION, self.handle_action), (evt.EVT_RELEASED, self._ended),
                (evt.EVT_ABORTED, self._ended), (evt.EVT_CONN_CLOSE, self._ended)]

    def handle_action(self, event):
        req = event.request
        calling = event.assoc.requestor.ae_title.strip()
        try:
            if str(req.RequestedSOPClassUID) != SOP_CLASS:
                raise CommitmentRefusal(0x0118, f"N-ACTION not supported for "
                                        f"{req.RequestedSOPClassUID}")
            information = event.action_information if req.ActionInformation is not None \
                else None
            request = parse(str(req.RequestedSOPInstanceUID or ""), req.ActionTypeID,
                            information)
            store = self.store
            if store is None:
                raise CommitmentRefusal(PROCESSING_FAILURE, "storage commitment not running")
            association_id = getattr(event.assoc, "association_id", None)
            transaction, kind = store.add(request, calling, association_id)
        except CommitmentRefusal as exc:
            log.warning("Storage Commitment N-ACTION from %s refused: 0x%04X %s",
                        calling or "-", exc.code, exc.comment)
            return exc.response(), None
        except Exception as exc:
            log.exception("Storage Commitment N-ACTION from %s failed", calling)
            return CommitmentRefusal(PROCESSING_FAILURE, f"cannot keep it: {exc}").response(), \
                None
        if association_id is not None:
            with self._lock:
                self._open[association_id] = event.assoc
        log.info("Storage Commitment request %s from %s: %d instance(s)%s",
                 request.transaction_uid, calling, len(request.items),
                 {"new": "", "repeat": " (asked again: reported again)",
                  "duplicate": " (Transaction UID used before: every item fails 0x0131)"}[kind])
        self._wake.set()
        return 0x0000, None

    def _ended(self, event) -> None:
        with self._lock:
            self._open.pop(getattr(event.assoc, "association_id", None), None)

    # -- worker -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # e.g. the database briefly busy: logged, tried again
                log.exception("storage commitment worker")
            self._wake.wait(POLL)
            self._wake.clear()

    def step(self) -> None:
        """One round: decide what can be decided, time out what waited too long, report."""
        store = self.store
        if store is None:
            return
        root = self.data_dir / INSTANCES_DIR
        deadline = time.time() - self.settings.timeout_hours * 3600
        for transaction in store.pending():
            results = {}
            conn = store.db.connection()
            for item in store.items(transaction.id):
                if item.result == checker.PENDING:
                    results[item.position] = checker.check_item(
                        conn, root, item.sop_class_uid, item.sop_instance_uid,
                        self.settings.commit_when)
            if transaction.received_at < deadline:
                for position, (result, _) in results.items():
                    if result == checker.PENDING:
                        results[position] = (checker.FAILED, checker.PROCESSING_FAILURE)
                log.warning("Storage Commitment %s from %s timed out after %g hours: what is "
                            "not committed is reported failed", transaction.transaction_uid,
                            transaction.calling_aet, self.settings.timeout_hours)
            decided = {p: r for p, r in results.items() if r[0] != checker.PENDING}
            if not decided:
                continue
            state = store.decide(transaction.id, decided)
            if state != checker.PENDING:
                log.info("Storage Commitment %s: %s", transaction.transaction_uid, state)
        for transaction in store.due_reports():
            self._report(store, transaction)

    def _report(self, store: CommitmentStore, transaction: Transaction) -> None:
        event_type, information = reporter.event_information(
            transaction.transaction_uid, store.items(transaction.id))
        with self._lock:
            assoc = self._open.get(transaction.association_id)
        if assoc is not None:
            # held until the requester answers it (or its association ends without): a
            # report is reported only once the requester has it
            store.report_failed(transaction.id, AWAITING_ANSWER, ANSWER_HOLD)
            if assoc.send_event(SOP_CLASS, SOP_CLASS, WELL_KNOWN_INSTANCE, event_type,
                                information,
                                on_outcome=self._outcome_handler(store, transaction)):
                return
        try:
            peer = reporter.requester_peer(self.config, transaction.calling_aet)
            if peer is None:
                raise reporter.ReportNotSent(
                    f"the requester {transaction.calling_aet} has closed its association "
                    "and no [[peers]] entry has its AE title")
            via = reporter.send_on_new_association(self.config, peer, event_type, information)
        except reporter.ReportNotSent as exc:
            self._not_sent(store, transaction, str(exc))
            return
        self._sent(store, transaction, via, event_type)

    def _outcome_handler(self, store: CommitmentStore, transaction: Transaction):
        """What to do once the report sent on the requester's association was answered, or
        was not delivered (the association ended first: then a new association, at once)."""
        def outcome(delivered: bool, status: int) -> None:
            via = f"its association ({transaction.association_id})"
            if delivered and is_success_or_warning(status):
                self._sent(store, transaction, via, None)
            elif delivered:
                self._not_sent(store, transaction, f"the requester answered the report on "
                               f"{via} with 0x{status:04X}")
            else:
                log.info("Storage Commitment report %s not delivered on %s (the association "
                         "ended first): sending it on a new association",
                         transaction.transaction_uid, via)
                store.report_failed(transaction.id, "not delivered on its association", 0)
                self._wake.set()
        return outcome

    def _sent(self, store: CommitmentStore, transaction: Transaction, via: str,
              event_type: int | None) -> None:
        store.reported(transaction.id, via)
        with self._lock:
            self._attempts.pop(transaction.id, None)
            self.reported += 1
        log.info("Storage Commitment report %s (%s%s) sent on %s", transaction.transaction_uid,
                 f"event type {event_type}, " if event_type else "", transaction.state, via)

    def _not_sent(self, store: CommitmentStore, transaction: Transaction, why: str) -> None:
        with self._lock:
            attempts = self._attempts.get(transaction.id, 0) + 1
            self._attempts[transaction.id] = attempts
        wait = backoff_delay(attempts, RETRY_INITIAL, RETRY_MAX)
        store.report_failed(transaction.id, why, wait)
        log.warning("Storage Commitment report %s (%s) not sent: %s; next try in %.0f s",
                    transaction.transaction_uid, transaction.state, why, wait)
