"""The STOW-RS client of the forwarder (PS3.18 10.5): sends a batch of stored instances to a
DICOMweb peer in one multipart/related; type="application/dicom" request, with the same result
contract as the C-STORE sender (`sender.send_batch`): one ItemResult per instance.

Instances go out as stored, byte for byte, read through `instance_payload` (the one place that
reads them); an instance whose route has coercion rules (`prepare`, route_rules.py) goes out as
the coerced data set encoded as a Part 10 file, its pixel data bytes unchanged, and rules that
cannot be applied to it fail that instance alone, with the reason.

The archive's response is read per instance: ReferencedSOPSequence -> done; FailedSOPSequence
-> that instance alone is retried (or failed, for a FailureReason that sending again cannot
change), with the archive's reason. A request that gets no usable answer
(connection refused, TLS, HTTP 401/403/404, a server error) raises AssociationFailed: the whole
destination backs off with that reason, as for a DIMSE peer that cannot be associated with.

HTTP is done with `requests` directly rather than dicomweb-client's `store_instances`: that one
takes pydicom data sets (so it would re-encode what we store byte for byte) and turns a
refused request (409) into an exception, losing the per-instance FailedSOPSequence.
"""

from __future__ import annotations

import json
import logging
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from appliance.dicom import dicomweb_peer
from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.peer_config import PeerConfig
from appliance.forward.coercion import CoercionError, encode
from appliance.forward.sender import AssociationFailed, ItemResult
from appliance.store.queue import QueueItem

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # one request holds at most this much (or one instance)

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"

# FailureReason values (PS3.18 Table I.2-1 / PS3.4 status codes) that sending the same
# instance again cannot change; any other is retried.
FINAL_FAILURES = {
    0x0122: "SOP Class not supported",
    0xA900: "Data set does not match SOP Class",
    0xC122: "Referenced Transfer Syntax not supported",
}
FAILURE_NAMES = {
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP Instance",
    0x0124: "Refused: not authorized",
    0xA700: "Refused: out of resources",
    0xC000: "Cannot understand",
    **FINAL_FAILURES,
}


def instance_payload(item: QueueItem, root: Path, prepare=None) -> bytes:
    """The bytes sent for `item`: its stored Part 10 file, unchanged, or the coerced copy when
    `prepare(item, path)` returns a data set (CoercionError when its rules cannot apply)."""
    path = root / item.path
    coerced = prepare(item, path) if prepare is not None else None
    return path.read_bytes() if coerced is None else encode(coerced)


def split_batches(items: list[QueueItem], root: Path,
                  limit: int = MAX_REQUEST_BYTES) -> list[list[QueueItem]]:
    """Split a batch so that one request holds at most `limit` bytes (or one instance)."""
    batches: list[list[QueueItem]] = [[]]
    size = 0
    for item in items:
        try:
            length = (root / item.path).stat().st_size
        except OSError:
            length = 0  # reported as missing when it is sent
        if batches[-1] and size + length > limit:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += length
    return [b for b in batches if b]


def multipart_body(parts: list[bytes]) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/related; type="application/dicom" request."""
    boundary = f"appliance-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(chunks), content_type


def send_batch(peer: PeerConfig, calling_aet: str, items: list[QueueItem], root: Path,
               timeout: float = 30.0, tls: DicomTlsConfig | None = None,
               prepare=None) -> list[ItemResult]:
    """Store `items` on the DICOMweb peer with one STOW-RS request; raise AssociationFailed
    when the request got no usable answer. (`calling_aet` and `tls` are for DIMSE peers.)
    `prepare` gives the coerced copy of an instance whose route has rules."""
    requests = dicomweb_peer.import_requests()  # only a box with a DICOMweb peer needs it

    where = dicomweb_peer.target(peer)
    results: list[ItemResult] = []
    sending: list[QueueItem] = []
    parts: list[bytes] = []
    for item in items:
        try:
            parts.append(instance_payload(item, root, prepare))
            sending.append(item)
        except CoercionError as exc:
            results.append(ItemResult(item, "failed", f"coercion rules not applicable: {exc}"))
        except FileNotFoundError:
            results.append(ItemResult(item, "failed", f"stored file {root / item.path} is "
                                      "missing"))
        except OSError as exc:
            results.append(ItemResult(item, "retry", f"cannot read the stored file: {exc}"))
    if not sending:
        return results
    body, content_type = multipart_body(parts)
    del parts
    try:
        with dicomweb_peer.session(peer) as http:
            rsp = http.post(dicomweb_peer.endpoint(peer, "studies"), data=body, timeout=timeout,
                            headers={"Content-Type": content_type,
                                     "Accept": dicomweb_peer.DICOM_JSON})
    except dicomweb_peer.DicomWebUnreachable as exc:
        raise AssociationFailed(f"STOW-RS to {where}: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise AssociationFailed(f"STOW-RS to {where}: "
                                f"{dicomweb_peer.transport_reason(exc)}") from exc
    refused = dicomweb_peer.refused_reason(rsp.status_code, rsp.text)
    if refused:
        raise AssociationFailed(f"STOW-RS to {where}: {refused}")
    return results + _per_instance(sending, rsp, where)


def _per_instance(items: list[QueueItem], rsp, where: str) -> list[ItemResult]:
    status = rsp.status_code
    try:
        stored, failed = parse_response(rsp.headers.get("Content-Type", ""), rsp.content)
    except ValueError as exc:
        if status == 200:  # all stored, whatever the body says
            return [ItemResult(i, "done", syntax=i.transfer_syntax) for i in items]
        detail = f"{where} answered HTTP {status} with a response we cannot read ({exc})"
        return [ItemResult(i, "retry", detail) for i in items]
    results = []
    for item in items:
        uid = item.sop_instance_uid
        if uid in failed:
            results.append(_failed(item, failed[uid], where))
        elif uid in stored or (status == 200 and not failed):
            results.append(ItemResult(item, "done", syntax=item.transfer_syntax))
        else:
            results.append(ItemResult(item, "retry", f"{where} answered HTTP {status} without "
                                      "a result for this instance"))
    return results


def _failed(item: QueueItem, reason: int | None, where: str) -> ItemResult:
    if reason is None:
        return ItemResult(item, "retry", f"{where} refused it in STOW-RS (no FailureReason)")
    name = FAILURE_NAMES.get(reason, "")
    detail = f"{where} refused it in STOW-RS: FailureReason 0x{reason:04X}" + \
        (f" ({name})" if name else "")
    return ItemResult(item, "failed" if reason in FINAL_FAILURES else "retry", detail)


def parse_response(content_type: str, content: bytes
                   ) -> tuple[set[str], dict[str, int | None]]:
    """(stored SOP Instance UIDs, failed ones -> FailureReason) from a STOW-RS response in
    DICOM JSON or DICOM XML; ValueError when there is none to read."""
    if not content.strip():
        raise ValueError("empty body")
    kind = content_type.split(";")[0].strip().lower()
    if kind.endswith("xml"):
        return _parse_xml(content)
    try:
        document = json.loads(content)
    except ValueError:
        raise ValueError(f"not DICOM JSON ({kind or 'no Content-Type'})") from None
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, dict):
        raise ValueError("not a DICOM JSON data set")
    stored = {uid for uid, _ in _json_items(document, REFERENCED_SOP_SEQUENCE)}
    failed = dict(_json_items(document, FAILED_SOP_SEQUENCE))
    return stored, failed


def _json_value(element: dict, key: str):
    values = (element.get(key) or {}).get("Value") or []
    return values[0] if values else None


def _json_items(document: dict, sequence: str):
    for entry in (document.get(sequence) or {}).get("Value") or []:
        uid = _json_value(entry, REFERENCED_SOP_INSTANCE_UID)
        if uid:
            yield str(uid), _as_int(_json_value(entry, FAILURE_REASON))


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _parse_xml(content: bytes) -> tuple[set[str], dict[str, int | None]]:
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not DICOM XML: {exc}") from None

    def items(sequence: str):
        for attribute in root.findall(f"DicomAttribute[@tag='{sequence}']"):
            for entry in attribute.findall("Item"):
                uid = entry.findtext(f"DicomAttribute[@tag='{REFERENCED_SOP_INSTANCE_UID}']/Value")
                reason = entry.findtext(f"DicomAttribute[@tag='{FAILURE_REASON}']/Value")
                if uid:
                    yield uid.strip(), _as_int(reason)

    return {uid for uid, _ in items(REFERENCED_SOP_SEQUENCE)}, dict(items(FAILED_SOP_SEQUENCE))
