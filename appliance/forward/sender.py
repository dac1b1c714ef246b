"""The C-STORE SCU of the forwarder: sends a batch of stored instances over one association.

Transfer syntax: for each SOP class in the batch we propose the stored syntax, and Explicit and
Implicit VR Little Endian, each in its own presentation context, so the peer can accept any of
them. An instance goes out as stored (streamed from its file, bytes unchanged) when its stored
syntax was accepted; otherwise uncompressed, after decoding, when the installed pixel data
handlers can decode it; otherwise it fails with the reason. TCP_NODELAY is set on the socket.
An instance whose route has coercion rules (`prepare`, route_rules.py) goes out as the coerced
data set instead, in the same transfer syntax, its pixel data bytes unchanged; rules that
cannot be applied to it fail that instance alone, with the reason.

Each instance gets its own result. When the association ends while an instance is in flight (the
peer aborted it, closed the connection, or did not answer within the timeout), that instance is
the 'suspect' with its own reason, and the ones after it were 'unsent': never tried, so nothing
is held against them.
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
from appliance.dicom.peer_association import PeerUnreachable, associate_peer, peer_target
from appliance.dicom.peer_config import PeerConfig
from appliance.dicom.scu import Timeouts, scu_ae
from appliance.forward.coercion import CoercionError
from appliance.store.queue import QueueItem

log = logging.getLogger(__name__)

# Send files as stored: pynetdicom streams the data set from the file without decoding it.
# (Only affects send_c_store called with a path; datasets are still encoded as usual.)
_config.STORE_SEND_CHUNKED_DATASET = True

UNCOMPRESSED = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))
MAX_CONTEXTS = 128
OK_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}


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
    """Send `items` over one association (over TLS with `tls`, `[dicom.tls]`); raise
    AssociationFailed when there is none. `prepare(item, path)` returns the coerced data set
    to send, or None to send the file as stored (route_rules.Prepare)."""
    ae = scu_ae(calling_aet, Timeouts.all(timeout))
    for sop_class, tsyntax in contexts_for(items):
        ae.add_requested_context(sop_class, [tsyntax])
    target = peer_target(peer)
    try:
        assoc = associate_peer(ae, peer, tls)
    except PeerUnreachable as exc:
        raise AssociationFailed(str(exc)) from exc
    accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                for cx in assoc.accepted_contexts}
    results: list[ItemResult] = []
    lost = False
    try:
        for index, item in enumerate(items):
            if not assoc.is_established:
                results.extend(ItemResult(i, "unsent", "association lost") for i in items[index:])
                break
            started = time.monotonic()
            result = _send_one(assoc, item, accepted, root, target, prepare)
            lost = result.outcome == "suspect" or (result.outcome != "done"
                                                   and not assoc.is_established)
            if lost:  # the association ended with this instance in flight: nothing more on it
                results.append(ItemResult(item, "suspect", _lost_reason(
                    target, time.monotonic() - started, timeout)))
                results.extend(ItemResult(i, "unsent", "association lost")
                               for i in items[index + 1:])
                break
            results.append(result)
    finally:
        if assoc.is_established:
            if lost:
                assoc.abort()
            else:
                assoc.release()
    return results


def _lost_reason(target: str, elapsed: float, timeout: float) -> str:
    """Why the association ended while one instance was in flight."""
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
            rsp, syntax = assoc.send_c_store(path if coerced is None else coerced), stored
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
            rsp = assoc.send_c_store(dataset)
    except FileNotFoundError:
        return ItemResult(item, "failed", f"stored file {path} is missing")
    except CoercionError as exc:
        return ItemResult(item, "failed", f"coercion rules not applicable: {exc}")
    except Exception as exc:  # a bad file must not stop the batch
        log.exception("sending %s to %s", item.sop_instance_uid, target)
        return ItemResult(item, "retry", f"cannot send: {exc}")
    status = getattr(rsp, "Status", None)
    if status is None:  # pynetdicom: timed out, aborted, or an invalid response
        return ItemResult(item, "suspect", f"no C-STORE response from {target}")
    if status in OK_STATUSES:
        return ItemResult(item, "done", syntax=syntax)
    return ItemResult(item, "retry", f"{target} answered C-STORE status 0x{status:04X}")
