"""The C-STORE SCU of the forwarder: sends a batch of stored instances over one association.

Transfer syntax: for each SOP class in the batch we propose the stored syntax, and Explicit and
Implicit VR Little Endian, each in its own presentation context, so the peer can accept any of
them. An instance goes out as stored (in its stored syntax, every value unchanged) when its
stored syntax was accepted; otherwise uncompressed, after decoding, when the installed pixel data
handlers can decode it; otherwise it fails with the reason. TCP_NODELAY is set on the socket.
The association is the native engine's C-STORE SCU (dicom/store_association.py: DCMTK reads the
file and writes it in that syntax) for a plain destination, pynetdicom's (the file streamed as
stored) for one over TLS.
An instance whose route has coercion rules (`prepare`, route_rules.py) goes out as the coerced
data set instead, in the same transfer syntax, its pixel data bytes unchanged; rules that
cannot be applied to it fail that instance alone, with the reason.

Each instance gets its own result. When the association ends while an instance is in flight (the
peer aborted it, closed the connection, or did not answer within the timeout), that instance is
the 'suspect' with its own reason, and the ones after it were 'unsent': never tried, so nothing
is held against them.

The worker's batch lane keeps the association (`Session`) for the batches that follow at once
rather than negotiating one per batch; it is released as soon as no batch follows within
REUSE_WITHIN seconds. If a kept association turns out to be gone before the first instance of a
batch was answered, that instance is 'unsent' (sent again at once, on a new association), not
the suspect.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import _config

from appliance.core.errors import ApplianceError
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_association import (
    PeerUnreachable,
    associate_peer,
    peer_target,
    store_association_with,
)
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import Timeouts, scu_ae
from appliance.dicom.store_association import UnreadableFile
from appliance.forward.coercion import CoercionError
from appliance.store.queue import QueueItem

log = logging.getLogger(__name__)

# Send files as stored: pynetdicom streams the data set from the file without decoding it.
# (Only affects send_c_store called with a path; datasets are still encoded as usual.)
_config.STORE_SEND_CHUNKED_DATASET = True

UNCOMPRESSED = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))
MAX_CONTEXTS = 128
OK_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}
# Seconds a kept association may wait unused for the next batch before it is released
REUSE_WITHIN = 1.0


class AssociationFailed(ApplianceError, ConnectionError):
    """No association with the destination: the whole destination backs off."""


@dataclass(frozen=True)
class ItemResult:
    item: QueueItem
    # 'done'; 'retry' (this instance failed, e.g. a failure status); 'failed' (cannot be sent
    # as things stand); 'suspect' (the association ended while it was in flight); 'unsent'
    # (not tried: the association had ended before its turn)
    outcome: str
    detail: str = ""
    syntax: str = ""


def contexts_for(items: list[QueueItem]) -> list[tuple[str, str]]:
    """(SOP class, transfer syntax) pairs to propose, one syntax per context."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        for tsyntax in (item.transfer_syntax, *UNCOMPRESSED):
            pair = (item.sop_class_uid, tsyntax)
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def split_by_contexts(items: list[QueueItem]) -> list[list[QueueItem]]:
    """Split a batch so that no association needs more than 128 presentation contexts."""
    batches: list[list[QueueItem]] = [[]]
    for item in items:
        if len(contexts_for(batches[-1] + [item])) > MAX_CONTEXTS:
            batches.append([])
        batches[-1].append(item)
    return [b for b in batches if b]


def decodable(tsyntax: str) -> bool:
    try:
        return get_decoder(UID(tsyntax)).is_available
    except (NotImplementedError, ValueError):
        return False


def send_batch(peer: PeerConfig, calling_aet: str, items: list[QueueItem], root: Path,
               timeout: float = 30.0, tls: DicomTlsConfig | None = None,
               prepare=None) -> list[ItemResult]:
    """Send `items` over one association of their own (over TLS with `tls`, `[dicom.tls]`);
    raise AssociationFailed when there is none. `prepare(item, path)` returns the coerced data
    set to send, or None to send the file as stored (route_rules.Prepare)."""
    session = Session(peer, calling_aet, items, timeout, tls)
    try:
        return session.send(items, root, prepare)
    finally:
        session.close()


class Session:
    """One association with a destination, opened for a batch and kept for the batches that
    follow at once: reused while it is established, was last used less than REUSE_WITHIN
    seconds ago, and proposed every presentation context the next batch needs (the batch lane
    of worker.py keeps one; each association costs a negotiation, and the queue fills while
    the modality is still sending). Raises AssociationFailed when there is no association."""

    def __init__(self, peer: PeerConfig, calling_aet: str, items: list[QueueItem],
                 timeout: float = 30.0, tls: DicomTlsConfig | None = None):
        self.contexts = contexts_for(items)
        self.timeout = timeout
        self.target = peer_target(peer)
        try:
            if tls is None:  # the native engine's C-STORE SCU (store_association.py)
                self.assoc = store_association_with(peer, calling_aet, self.contexts,
                                                    Timeouts.all(timeout))
            else:
                self.assoc = _PynetdicomStore(peer, calling_aet, self.contexts, timeout, tls)
        except PeerUnreachable as exc:
            raise AssociationFailed(str(exc)) from exc
        self.accepted = self.assoc.accepted
        self.batches = 0  # batches sent on it so far
        self.last_used = time.monotonic()
        # The last batch found the kept association gone before its first instance was
        # answered (the peer closed it while we did not use it): nothing is held against it.
        self.went_stale = False

    @property
    def is_open(self) -> bool:
        return self.assoc.is_established

    def idle_left(self) -> float:
        """Seconds it may still wait for the next batch (<= 0: release it)."""
        return REUSE_WITHIN - (time.monotonic() - self.last_used)

    def usable_for(self, items: list[QueueItem]) -> bool:
        return (self.is_open and self.idle_left() > 0
                and set(contexts_for(items)) <= set(self.contexts))

    def send(self, items: list[QueueItem], root: Path, prepare=None) -> list[ItemResult]:
        """Each item's result; after a lost association (aborted, closed, timed out) the rest
        are 'unsent' and the session is closed. On a kept association that turns out to be
        gone (closed or aborted, not timed out) before its first instance was answered, that
        instance is 'unsent' too: nothing says the instance was the cause."""
        reused, self.went_stale = self.batches > 0, False
        self.batches += 1
        results: list[ItemResult] = []
        try:
            for index, item in enumerate(items):
                if not self.assoc.is_established:
                    results.extend(ItemResult(i, "unsent", "association lost")
                                   for i in items[index:])
                    self.went_stale = reused and index == 0
                    break
                started = time.monotonic()
                result = _send_one(self.assoc, item, self.accepted, root, self.target, prepare)
                if result.outcome == "suspect" or (result.outcome != "done"
                                                   and not self.assoc.is_established):
                    # the association ended with this instance in flight: nothing more on it
                    elapsed = time.monotonic() - started
                    if reused and index == 0 and elapsed < self.timeout * 0.9:
                        self.went_stale = True
                        results.extend(ItemResult(i, "unsent", "kept association lost")
                                       for i in items)
                    else:
                        results.append(ItemResult(item, "suspect", _lost_reason(
                            self.target, elapsed, self.timeout, self.assoc.stalled)))
                        results.extend(ItemResult(i, "unsent", "association lost")
                                       for i in items[index + 1:])
                    self.abort()
                    break
                results.append(result)
        except BaseException:
            self.abort()
            raise
        self.last_used = time.monotonic()
        return results

    def abort(self) -> None:
        if self.assoc.is_established:
            self.assoc.abort()

    def close(self) -> None:
        """A-RELEASE (nothing when the association has ended already)."""
        if self.assoc.is_established:
            self.assoc.release()


class _PynetdicomStore:
    """The same face as store_association.StoreAssociation on a pynetdicom association: for
    destinations over TLS (`[dicom.tls]`), which the native SCU does not speak."""

    #: pynetdicom does not tell a peer that takes no data from one that does not answer
    stalled = False

    def __init__(self, peer: PeerConfig, calling_aet: str, contexts: list[tuple[str, str]],
                 timeout: float, tls: DicomTlsConfig):
        ae = scu_ae(calling_aet, Timeouts.all(timeout))
        for sop_class, tsyntax in contexts:
            ae.add_requested_context(sop_class, [tsyntax])
        self._assoc = associate_peer(ae, peer, tls)
        self.accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                         for cx in self._assoc.accepted_contexts}

    @property
    def is_established(self) -> bool:
        return self._assoc.is_established

    def store_file(self, path: Path, sop_class: str, sop_instance: str,
                   syntax: str) -> int | None:
        # streamed from the file as stored (STORE_SEND_CHUNKED_DATASET)
        return getattr(self._assoc.send_c_store(path), "Status", None)

    def store_dataset(self, dataset, syntax: str) -> int | None:
        return getattr(self._assoc.send_c_store(dataset), "Status", None)

    def release(self) -> None:
        self._assoc.release()

    def abort(self) -> None:
        self._assoc.abort()


def _lost_reason(target: str, elapsed: float, timeout: float, stalled: bool) -> str:
    """Why the association ended while one instance was in flight (`stalled`: the peer took
    no data of it for `timeout`)."""
    if stalled:
        return f"{target} took no data of this instance for {timeout:g} s"
    if elapsed >= timeout * 0.9:
        return f"{target} did not answer the C-STORE of this instance within {timeout:g} s"
    return f"{target} aborted the association while receiving this instance"


def _send_one(assoc, item: QueueItem, accepted: set[tuple[str, str]], root: Path,
              target: str, prepare=None) -> ItemResult:
    path = root / item.path
    stored = item.transfer_syntax
    try:
        coerced = prepare(item, path) if prepare is not None else None
        if (item.sop_class_uid, stored) in accepted:
            syntax = stored
            status = (assoc.store_file(path, item.sop_class_uid, item.sop_instance_uid, stored)
                      if coerced is None else assoc.store_dataset(coerced, stored))
        else:
            syntax = next((ts for ts in UNCOMPRESSED if (item.sop_class_uid, ts) in accepted),
                          None)
            if syntax is None:
                return ItemResult(item, "failed", f"{target} accepted no presentation context "
                                  f"for SOP class {item.sop_class_uid}")
            dataset = dcmread(path) if coerced is None else coerced
            if UID(stored).is_compressed:
                if not decodable(stored):
                    return ItemResult(item, "failed", f"{target} does not accept "
                                      f"{UID(stored).name} and no installed decoder can "
                                      "decompress it to send it uncompressed")
                dataset.decompress(generate_instance_uid=False)  # the same instance
            target_uid = UID(syntax)
            dataset.file_meta.TransferSyntaxUID = target_uid
            dataset.set_original_encoding(target_uid.is_implicit_VR,
                                          target_uid.is_little_endian,
                                          dataset.original_character_set)
            status = assoc.store_dataset(dataset, syntax)
    except FileNotFoundError:
        return ItemResult(item, "failed", f"stored file {path} is missing")
    except UnreadableFile as exc:  # truncated or damaged on the box: sending cannot help
        return ItemResult(item, "failed", f"stored file {path} cannot be read: {exc}")
    except CoercionError as exc:
        return ItemResult(item, "failed", f"coercion rules not applicable: {exc}")
    except Exception as exc:  # a bad file must not stop the batch
        log.exception("sending %s to %s", item.sop_instance_uid, target)
        return ItemResult(item, "retry", f"cannot send: {exc}")
    if status is None:  # timed out, aborted, or an invalid response
        return ItemResult(item, "suspect", f"no C-STORE response from {target}")
    if status in OK_STATUSES:
        return ItemResult(item, "done", syntax=syntax)
    return ItemResult(item, "retry", f"{target} answered C-STORE status 0x{status:04X}")
