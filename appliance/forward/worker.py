"""Two threads per destination: take due items from its queue, send them, record each item's
outcome, back off after failures, and respect hold. All progress is in the database, so a
restart carries on where the last run stopped (an item sent but not yet marked done is sent
once more: receivers treat a repeated SOP Instance UID as the same object).

The batch lane sends items in batches, keeping the association for the batches that follow
at once (sender.Session; released when the queue stays empty, the destination is held or the
next batch needs other presentation contexts). A batch's delivered items are recorded in one
transaction (one durable commit per batch, after the C-STORE responses: an instance is never
marked done before its Success, and a crash before the commit only sends them again).

When the destination aborts or times out in the middle of a batch, the items already answered
keep their result, the item in flight becomes isolated (with its own reason) and the rest go out
again at once on a new association: no backoff for them. The isolated lane sends isolated items
alone, one association each; an isolated item that fails again waits out its own backoff (then
`max_age_hours`), and is never batched with others again until it is delivered, so it holds up
nobody. Only a destination that cannot be reached (or that ends SICK_AFTER associations in a row
before accepting anything) backs off as a whole.

A DICOMweb destination (`protocol = "dicomweb"`) goes through the same lanes with the STOW-RS
sender (`stow_sender`): one request per batch, each instance with its own result."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig
from appliance.forward import sender
from appliance.forward.config import DestinationConfig
from appliance.forward.sender import AssociationFailed, ItemResult, split_by_contexts
from appliance.store.database import Database
from appliance.store.queue import ForwardQueue

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds between looks at the queue when nothing wakes us (CLI changes)
# Associations in a row that ended (abort, timeout) before the destination accepted anything:
# then the destination itself is unwell, and it backs off as a whole.
SICK_AFTER = 3


class DestinationWorker:
    def __init__(self, db: Database, destination: DestinationConfig, peer: PeerConfig,
                 calling_aet: str, root: Path, on_change=None, on_sent=None,
                 tls: DicomTlsConfig | None = None, prepare=None):
        self.queue = ForwardQueue(db)
        self.db = db
        self.settings = destination
        self.peer = peer
        self.calling_aet = calling_aet
        self.tls = tls  # [dicom.tls] for a peer with tls = true
        self.prepare = prepare  # coercion rules of its routes (route_rules.py), None: none
        self.sender = _sender_for(peer)
        self.root = root
        self.on_change = on_change or (lambda: None)
        # on_sent(sent, failed): instances delivered / given up in one batch (for metrics)
        self.on_sent = on_sent or (lambda sent, failed: None)
        self.wake = threading.Event()
        self.wake_isolated = threading.Event()
        self._stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(self.step, self.wake),
                             name=f"forward:{peer.name}", daemon=True),
            threading.Thread(target=self._run, args=(self.step_isolated, self.wake_isolated),
                             name=f"forward:{peer.name}:isolated", daemon=True)]
        self._sent = {"batch": 0, "isolated": 0}
        self.broken_in_a_row = 0  # associations ended before anything was accepted
        self._session: sender.Session | None = None  # the batch lane's kept association

    @property
    def name(self) -> str:
        return self.peer.name

    @property
    def sent(self) -> int:
        return sum(self._sent.values())

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self.wake.set()
        self.wake_isolated.set()
        for thread in self.threads:
            thread.join(timeout)

    def is_alive(self) -> bool:
        return all(thread.is_alive() for thread in self.threads)

    def _run(self, step, wake: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                delay = step()
            except Exception:  # e.g. the database briefly busy: log, wait, carry on
                log.exception("forward worker for %s", self.name)
                delay = IDLE_POLL
            if delay > 0:
                wake.wait(delay)
                wake.clear()
        if step == self.step:
            self.release_association()

    def release_association(self) -> None:
        """Release the batch lane's kept association, if any."""
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # the peer went away: nothing to release
                log.debug("releasing the association with %s", self.name, exc_info=True)

    def _ready(self) -> float:
        """0 when the destination may be sent to now, else how long to wait."""
        state = self.queue.destination_state(self.name)
        if state["held"]:
            return IDLE_POLL
        now = time.time()
        if state["next_attempt"] > now:
            return min(state["next_attempt"] - now, IDLE_POLL)
        return 0.0

    def _idle(self, isolated: bool) -> float:
        next_due = self.queue.next_due_at(self.name, isolated=isolated)
        if next_due is None:
            return IDLE_POLL
        return max(0.05, min(next_due - time.time(), IDLE_POLL))

    def step(self) -> float:
        """One round of the batch lane; returns how long to wait before the next."""
        s = self.settings
        if self.queue.destination_state(self.name)["held"]:
            self.release_association()
            return IDLE_POLL
        self.queue.expire(self.name, s.max_age_hours * 3600)
        wait = self._ready()
        if wait:
            self.release_association()
            return wait
        items = self.queue.due(self.name, s.batch_size)
        if not items:
            return self._linger()
        for batch in self._split(items):
            results = self._send(batch, "batch")
            if results is None:
                return min(self._ready() or IDLE_POLL, IDLE_POLL)
            if any(r.outcome in ("suspect", "unsent") for r in results):
                # The association ended mid-batch: the rest go again at once, on a new one.
                if self.broken_in_a_row >= SICK_AFTER:
                    return self._destination_unwell(results)
                return 0.0
        return 0.0

    def _linger(self) -> float:
        """Nothing due in the batch lane: keep the association a moment for what the modality
        is still sending, then release it."""
        delay = self._idle(isolated=False)
        if self._session is not None:
            left = self._session.idle_left()
            if left <= 0 or not self._session.is_open:
                self.release_association()
            else:
                delay = min(delay, left)
        return delay

    def step_isolated(self) -> float:
        """One round of the isolated lane: each due isolated item alone on an association."""
        wait = self._ready()
        if wait:
            return wait
        items = self.queue.due(self.name, 1, isolated=True)
        if not items:
            return self._idle(isolated=True)
        results = self._send(items, "isolated")
        if results is None:
            return min(self._ready() or IDLE_POLL, IDLE_POLL)
        return 0.0

    def _split(self, items):
        if self.sender is sender:
            return split_by_contexts(items)
        return self.sender.split_batches(items, self.root)

    def _send(self, batch, lane: str) -> list[ItemResult] | None:
        """Send one batch and record every item's outcome; None when there was no association
        (the destination backs off)."""
        s = self.settings
        stale = False
        try:
            if lane == "batch" and self.sender is sender:
                results, stale = self._send_kept(batch)
            else:
                results = self.sender.send_batch(self.peer, self.calling_aet, batch, self.root,
                                                 s.timeout, self.tls, self.prepare)
        except AssociationFailed as exc:
            delay = self.queue.destination_failed(self.name, str(exc), s.retry_initial,
                                                  s.retry_max)
            log.warning("forward to %s failed: %s; next try in %.0fs", self.name, exc, delay)
            self.on_change()
            return None
        failed = 0
        delivered: list[tuple[int, str]] = []
        retry: dict[int, str] = {}
        for result in results:
            item = result.item
            if result.outcome == "done":
                delivered.append((item.instance_id, result.syntax))
            elif result.outcome == "failed":
                log.error("forward %s to %s failed: %s", item.sop_instance_uid, self.name,
                          result.detail)
                self.queue.mark_failed(self.name, item.instance_id, result.detail)
                failed += 1
            elif result.outcome == "retry" or (item.isolated and result.outcome != "done"):
                log.warning("forward %s to %s: %s; will retry", item.sop_instance_uid,
                            self.name, result.detail)
                retry[item.instance_id] = result.detail
            elif result.outcome == "suspect":
                log.warning("forward %s to %s: %s; sending it alone from now on, the %d after "
                            "it again at once", item.sop_instance_uid, self.name, result.detail,
                            sum(r.outcome == "unsent" for r in results))
                self.queue.mark_isolated(self.name, item.instance_id, result.detail)
                self.wake_isolated.set()
        if retry:
            self.queue.mark_retry(self.name, retry, s.retry_initial, s.retry_max)
        self.queue.mark_done_many(self.name, delivered)  # one commit for the batch
        done = len(delivered)
        if lane == "batch" and not stale:
            broken = any(r.outcome in ("suspect", "unsent") for r in results)
            self.broken_in_a_row = 0 if done or not broken else self.broken_in_a_row + 1
        self._sent[lane] += done
        self.on_sent(done, failed)
        self.on_change()
        return results

    def _send_kept(self, batch) -> tuple[list[ItemResult], bool]:
        """The batch over the kept association (a new one when there is none or it does not
        fit); the results, and whether the kept association was found gone before anything."""
        s = self.settings
        if self._session is not None and not self._session.usable_for(batch):
            self.release_association()
        if self._session is None:
            self._session = sender.Session(self.peer, self.calling_aet, batch, s.timeout,
                                           self.tls)
        session = self._session
        try:
            results = session.send(batch, self.root, self.prepare)
        finally:
            if not session.is_open:
                self._session = None
        return results, session.went_stale

    def _destination_unwell(self, results: list[ItemResult]) -> float:
        detail = next((r.detail for r in results if r.outcome == "suspect"), "association lost")
        s = self.settings
        delay = self.queue.destination_failed(
            self.name, f"{SICK_AFTER} associations in a row ended before the destination "
            f"accepted any instance; last: {detail}", s.retry_initial, s.retry_max)
        log.warning("forward to %s: %d associations in a row ended before anything was "
                    "accepted; next try in %.0fs", self.name, self.broken_in_a_row, delay)
        self.on_change()  # broken_in_a_row stays: the next broken association backs off again
        return min(delay, IDLE_POLL)


def _sender_for(peer: PeerConfig):
    """The sender module for the peer's protocol: C-STORE, or STOW-RS (imported only when a
    DICOMweb destination is configured)."""
    if peer.protocol == "dicomweb":
        from appliance.forward import stow_sender

        return stow_sender
    return sender
