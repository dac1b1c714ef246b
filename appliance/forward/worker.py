"""Threads per destination (`associations` batch lanes and one isolated lane): take due items
from its queue, send them, record each item's outcome, back off after failures, and respect
hold. All progress is in the database, so a restart carries on where the last run stopped (an
item sent but not yet marked done is sent once more: receivers treat a repeated SOP Instance
UID as the same object).

The batch lane sends items in batches, keeping the association for the batches that follow
at once (sender.Session; released when the queue stays empty, the destination is held or the
next batch needs other presentation contexts). With `associations` > 1, each batch lane keeps
its own association and claims its own batches (lanes.InFlight: an instance is never in two
batches at once; a lane takes its share of what is due, so a burst's first small batches go out
on every lane). The destination's first association decides as ever whether it is reachable;
one opened beside it that the destination refuses (an association limit) only makes that lane
wait and try again later (logged once) while the others keep sending. A batch's delivered items
are recorded in one transaction (one durable commit per batch, after the C-STORE responses: an
instance is never marked done before its Success, and a crash before the commit only sends them
again).

When the destination aborts or times out in the middle of a batch, the items already answered
keep their result, the item in flight becomes isolated (with its own reason) and the rest go out
again at once on a new association: no backoff for them. The isolated lane sends isolated items
alone, one association each; an isolated item that fails again waits out its own backoff (then
`max_age_hours`), and is never batched with others again until it is delivered, so it holds up
nobody. Only a destination that cannot be reached (or that ends SICK_AFTER associations in a row
before accepting anything) backs off as a whole.

A DICOMweb destination (`protocol = "dicomweb"`) goes through the same lanes with the STOW-RS
sender (`stow_sender`): one request per batch, each instance with its own result, one batch
lane (`associations` applies to DICOM destinations only)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from appliance.core.backoff import backoff_delay
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig
from appliance.forward import sender
from appliance.forward.config import DestinationConfig
from appliance.forward.lanes import InFlight
from appliance.forward.sender import AssociationFailed, ItemResult, split_by_contexts
from appliance.store.database import Database
from appliance.store.queue import ForwardQueue

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds between looks at the queue when nothing wakes us (CLI changes)
# Associations in a row that ended (abort, timeout) before the destination accepted anything:
# then the destination itself is unwell, and it backs off as a whole.
SICK_AFTER = 3
EXPIRE_EVERY = 1.0  # seconds between looks for instances older than max_age_hours


class _Lane:
    """One batch lane: its thread's wake-up, its kept association, and (for an association
    opened beside the others) how often in a row the destination refused it and until when
    the lane leaves it at that."""

    def __init__(self, index: int):
        self.index = index
        self.wake = threading.Event()
        self.session: sender.Session | None = None
        self.refused = 0
        self.wait_until = 0.0  # time.monotonic()

    @property
    def is_open(self) -> bool:
        return self.session is not None and self.session.is_open


class _WakeAll:
    """Wakes every batch lane of a worker (the forwarder sets it for each stored instance)."""

    def __init__(self, lanes: list[_Lane]):
        self.lanes = lanes

    def set(self) -> None:
        for lane in self.lanes:
            lane.wake.set()


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
        # DICOM: `associations` batch lanes; DICOMweb: one (one STOW-RS request at a time)
        count = destination.associations if self.sender is sender else 1
        self.lanes = [_Lane(index) for index in range(count)]
        self.in_flight = InFlight(count)
        self.wake = _WakeAll(self.lanes)
        self.wake_isolated = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the counters below
        self._opening = threading.Lock()  # one lane at a time decides whether it is the first
        self.threads = [
            threading.Thread(target=self._run, args=(self.step, lane.wake, lane.index),
                             name=f"forward:{peer.name}" + (f":{lane.index + 1}" if lane.index
                                                            else ""), daemon=True)
            for lane in self.lanes]
        self.threads.append(threading.Thread(
            target=self._run, args=(self.step_isolated, self.wake_isolated),
            name=f"forward:{peer.name}:isolated", daemon=True))
        self._sent = {"batch": 0, "isolated": 0}
        self.broken_in_a_row = 0  # associations ended before anything was accepted
        self._refusal_logged = False
        self._expire_at = 0.0  # time.monotonic() of the next look for expired instances

    @property
    def name(self) -> str:
        return self.peer.name

    @property
    def sent(self) -> int:
        return sum(self._sent.values())

    @property
    def _session(self) -> sender.Session | None:
        """The first batch lane's kept association."""
        return self.lanes[0].session

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

    def _run(self, step, wake: threading.Event, lane: int | None = None) -> None:
        while not self._stop.is_set():
            try:
                delay = step() if lane is None else step(lane)
            except Exception:  # e.g. the database briefly busy: log, wait, carry on
                log.exception("forward worker for %s", self.name)
                delay = IDLE_POLL
            if delay > 0:
                wake.wait(delay)
                wake.clear()
        if lane is not None:
            self.release_association(lane)

    def release_association(self, lane: int | None = None) -> None:
        """Release a batch lane's kept association (every lane's: None), if any."""
        for each in self.lanes if lane is None else [self.lanes[lane]]:
            session, each.session = each.session, None
            if session is not None:
                try:
                    session.close()
                except Exception:  # the peer went away: nothing to release
                    log.debug("releasing the association with %s", self.name, exc_info=True)

    def _ready(self, state=None) -> float:
        """0 when the destination may be sent to now, else how long to wait (`state`: its
        row, just read)."""
        state = self.queue.destination_state(self.name) if state is None else state
        if state["held"]:
            return IDLE_POLL
        now = time.time()
        if state["next_attempt"] > now:
            return min(state["next_attempt"] - now, IDLE_POLL)
        return 0.0

    def _idle(self, isolated: bool, busy: bool = False) -> float:
        """How long to wait when nothing is due for this lane; `busy`: due instances are in
        flight on other lanes (their lane wakes this one when it gives them back)."""
        next_due = self.queue.next_due_at(self.name, isolated=isolated)
        if next_due is None:
            return IDLE_POLL
        wait = next_due - time.time()
        if busy and wait <= 0:
            return IDLE_POLL
        return max(0.05, min(wait, IDLE_POLL))

    def _due(self, limit: int):
        return self.queue.due(self.name, limit)

    def step(self, lane: int = 0) -> float:
        """One round of a batch lane; returns how long to wait before the next."""
        s = self.settings
        this = self.lanes[lane]
        state = self.queue.destination_state(self.name)
        if state["held"]:
            self.release_association(lane)
            return IDLE_POLL
        if lane == 0 and time.monotonic() >= self._expire_at:
            self._expire_at = time.monotonic() + EXPIRE_EVERY
            self.queue.expire(self.name, s.max_age_hours * 3600)
        wait = self._ready(state)
        if wait:
            self.release_association(lane)
            return wait
        if this.session is not None and (not this.is_open or this.session.idle_left() <= 0):
            self.release_association(lane)
        if this.session is None and self.sender is sender:
            # The association first, then the claim: no instance waits on a lane whose
            # association the destination refuses or is slow to accept.
            upcoming = self.in_flight.peek(self._due, s.batch_size)
            if not upcoming:
                return self._idle(isolated=False, busy=len(self.in_flight) > 0)
            delay = self._open(this, upcoming)
            if delay is not None:
                return delay
        items, busy = self.in_flight.claim(self._due, s.batch_size)
        if not items:
            return self._linger(this, busy)
        try:
            for batch in self._split(items):
                results = self._send(batch, "batch", this)
                if results is None:
                    return min(self._ready() or IDLE_POLL, IDLE_POLL)
                if any(r.outcome in ("suspect", "unsent") for r in results):
                    # The association ended mid-batch: the rest go again at once, on a new one.
                    if self.broken_in_a_row >= SICK_AFTER:
                        return self._destination_unwell(results)
                    return 0.0
        finally:
            self.in_flight.release(items)
            for other in self.lanes:  # those that found everything in flight look again
                if other is not this:
                    other.wake.set()
        return 0.0

    def _linger(self, this: _Lane, busy: bool) -> float:
        """Nothing due for this lane: keep the association a moment for what the modality
        is still sending, then release it."""
        delay = self._idle(isolated=False, busy=busy)
        if this.session is not None:
            left = this.session.idle_left()
            if left <= 0 or not this.is_open:
                self.release_association(this.index)
            else:
                delay = min(delay, left)
        return delay

    def _open(self, this: _Lane, items) -> float | None:
        """Open the lane's association for `items`: None when it is open, else how long to
        wait. The destination's first association is opened as ever: no association backs
        the destination off. One opened beside others that are open (and sending without
        losing instances) is an extra: when the destination refuses it (e.g. its association
        limit), only this lane waits and tries again later, logged once, while the others
        go on sending."""
        s = self.settings
        with self._opening:
            if not any(lane.is_open for lane in self.lanes if lane is not this):
                wait = self._ready()  # another lane may have just failed to open one
                if wait:
                    return wait
                try:
                    this.session = sender.Session(self.peer, self.calling_aet, items,
                                                  s.timeout, self.tls)
                except AssociationFailed as exc:
                    return min(self._destination_failed(exc), IDLE_POLL)
                return None
        left = this.wait_until - time.monotonic()
        if left > 0 or self.broken_in_a_row:  # refused lately, or instances being lost
            return min(left, IDLE_POLL) if left > 0 else IDLE_POLL
        try:
            this.session = sender.Session(self.peer, self.calling_aet, items, s.timeout,
                                          self.tls)
        except AssociationFailed as exc:
            this.refused += 1
            delay = backoff_delay(this.refused, s.retry_initial, s.retry_max)
            this.wait_until = time.monotonic() + delay
            if not self._refusal_logged:
                self._refusal_logged = True
                log.warning("forward to %s: a further association (%d of %d) was not opened: "
                            "%s; that lane tries again later while the others send (logged "
                            "once)", self.name, this.index + 1, len(self.lanes), exc)
            else:
                log.debug("forward to %s: further association refused: %s", self.name, exc)
            return min(delay, IDLE_POLL)
        this.refused = 0
        return None

    def _destination_failed(self, exc: AssociationFailed) -> float:
        """No association: the whole destination backs off. Returns the delay."""
        s = self.settings
        delay = self.queue.destination_failed(self.name, str(exc), s.retry_initial,
                                              s.retry_max)
        log.warning("forward to %s failed: %s; next try in %.0fs", self.name, exc, delay)
        self.on_change()
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

    def _send(self, batch, lane: str, this: _Lane | None = None) -> list[ItemResult] | None:
        """Send one batch and record every item's outcome; None when there was no association
        (the destination backs off, or the lane waits)."""
        s = self.settings
        stale = False
        try:
            if this is not None and self.sender is sender:
                kept = self._send_kept(batch, this)
                if kept is None:
                    return None
                results, stale = kept
            else:
                results = self.sender.send_batch(self.peer, self.calling_aet, batch, self.root,
                                                 s.timeout, self.tls, self.prepare)
        except AssociationFailed as exc:
            self._destination_failed(exc)
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
        with self._lock:
            if lane == "batch" and not stale:
                broken = any(r.outcome in ("suspect", "unsent") for r in results)
                self.broken_in_a_row = 0 if done or not broken else self.broken_in_a_row + 1
            self._sent[lane] += done
        self.on_sent(done, failed)
        self.on_change()
        return results

    def _send_kept(self, batch, this: _Lane) -> tuple[list[ItemResult], bool] | None:
        """The batch over the lane's kept association (a new one when there is none or it does
        not fit); the results, and whether the kept association was found gone before
        anything; None when no association could be opened."""
        if this.session is not None and not this.session.usable_for(batch):
            self.release_association(this.index)
        if this.session is None and self._open(this, batch) is not None:
            return None
        session = this.session
        try:
            results = session.send(batch, self.root, self.prepare)
        finally:
            if not session.is_open:
                this.session = None
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
