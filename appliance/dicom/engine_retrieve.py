"""pynetdicom-style C-GET and C-MOVE handlers behind the native engine: what pynetdicom's
Query/Retrieve service class does with a handler's yields, redone for the engine's
`on_request` protocol (see `appliance.dicom.engine`'s `RequestHandler`).

C-GET: the handler yields the number of sub-operations, then `(status, dataset)` pairs; a
Pending status with a data set means "send this as a C-STORE sub-operation", which becomes the
engine's `("store", bytes, sop_class, sop_instance, transfer_syntax)` item on the requester's
association; the status the engine sends back is counted, and a Pending C-GET-RSP with the
counts follows each sub-operation, as pynetdicom does. C-MOVE: the handler yields the
destination `(address, port)` or `(address, port, {"contexts": [...], "tls": ssl context,
"timeouts": scu.Timeouts})` first, then the number of sub-operations, then the pairs; the
sub-operations go over an association of our own to that destination, opened with the SCU
helper (scu.py: timeouts, TCP_NODELAY, TLS) and `send_c_store` from the request's thread,
released at the end.

A handler may yield a status (an int for C-MOVE, or a data set with Status and Error Comment)
instead of the destination (C-MOVE) or the count: the request is refused with it before any
sub-operation (an extension of pynetdicom's protocol, for 0xA900 and the like).
Final answers follow pynetdicom: the handler's Cancel, Failure or Warning status ends the
retrieve with the counts (remaining ones counted as failed for Failure/Warning) and a Failed
SOP Instance UID List; Success (or the end of the handler's yields) answers 0xA702 (unable to
perform sub-operations) with that list when every sub-operation failed, 0xB000 with it when
some failed or warned, else 0x0000.
Not supported: pynetdicom's `event.is_cancelled` (always False: a C-CANCEL closes the handler's
generator instead), bulk data removal for the Composite Instance Retrieve Without Bulk Data
model, and the AE's own settings for the C-MOVE association (its title is ours, the called AE
title, and its contexts pynetdicom's `StoragePresentationContexts` unless the handler names
them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.uid import UID

from appliance.dicom.dimse_status import PENDING, is_warning

log = logging.getLogger(__name__)

CANCEL = 0xFE00
GET_FAILED = 0xC411     # pynetdicom: exception in the C-GET handler
MOVE_FAILED = 0xC511    # pynetdicom: exception in the C-MOVE handler
DESTINATION_UNKNOWN = 0xA801
ALL_FAILED = 0xA702     # every sub-operation failed: unable to perform sub-operations
NOT_SENT = 0x0122       # the engine's status for a sub-operation it could not send
#: The C-MOVE association's timeouts (connection, ACSE, DIMSE, network) when the handler
#: names none: pynetdicom's defaults, with a connection timeout.
DEFAULT_TIMEOUTS = (30.0, 30.0, 30.0, 60.0)


class SubOperations:
    """The counts of a retrieve's C-STORE sub-operations and the instances that failed."""

    def __init__(self, total: int):
        self.remaining, self.completed, self.failed, self.warning = total, 0, 0, 0
        self.failed_uids: list[str] = []

    def count(self, status: int | None, sop_instance_uid: str) -> None:
        self.remaining = max(0, self.remaining - 1)
        if status == 0x0000:
            self.completed += 1
        elif status is not None and is_warning(status):
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(sop_instance_uid)

    def fields(self, remaining_failed: bool = False) -> dict:
        failed = self.failed + (self.remaining if remaining_failed else 0)
        return {"remaining": self.remaining, "completed": self.completed, "failed": failed,
                "warning": self.warning}

    def failed_list(self, syntax: UID, encode) -> bytes:
        identifier = Dataset()
        identifier.FailedSOPInstanceUIDList = self.failed_uids
        return encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian)


def _final(code: int, fields: dict, counts: SubOperations, syntax: UID, encode):
    """The final answer for the handler's non-Pending `code` (pynetdicom's rules)."""
    if code == CANCEL:
        return CANCEL, counts.failed_list(syntax, encode), {**fields, **counts.fields()}
    if code == 0x0000:
        if counts.failed and not counts.completed and not counts.warning:
            return ALL_FAILED, counts.failed_list(syntax, encode), counts.fields()
        if counts.failed or counts.warning:
            return 0xB000, counts.failed_list(syntax, encode), counts.fields()
        return 0x0000, None, counts.fields()
    return code, counts.failed_list(syntax, encode), {**fields, **counts.fields(True)}


def _store_item(dataset, accepted_contexts) -> tuple | None:
    """The engine's C-STORE sub-operation for what a handler yielded: a file path as it is, a
    data set encoded in its File Meta transfer syntax (else the syntax the requester accepted
    for its SOP class)."""
    from pynetdicom.dsutils import encode

    if isinstance(dataset, (str, Path)):
        meta = dcmread(dataset, stop_before_pixels=True)
        return ("store", str(dataset), str(meta.SOPClassUID), str(meta.SOPInstanceUID),
                str(meta.file_meta.TransferSyntaxUID))
    sop_class, sop_instance = str(dataset.SOPClassUID), str(dataset.SOPInstanceUID)
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None:
        syntax = next((cx.transfer_syntax[0] for cx in accepted_contexts
                       if cx.abstract_syntax == sop_class), None)
    if syntax is None:
        return None
    syntax = UID(syntax)
    data = encode(dataset, syntax.is_implicit_VR, syntax.is_little_endian)
    if data is None:
        return None
    return "store", data, sop_class, sop_instance, str(syntax)


def get_answers(handler, event, encode) -> Iterator[tuple]:
    """A pynetdicom C-GET handler's yields as the engine's answers and sub-operations."""
    syntax = UID(event.context.transfer_syntax)
    answers = handler(event)
    try:
        first = next(answers)
        if isinstance(first, Dataset):  # refused before any sub-operation
            yield _refusal(first)
            return
        total = int(first)
        counts = SubOperations(total)
        if total < 1:
            yield 0x0000, None, counts.fields()
            return

        def store(dataset) -> tuple:  # sent by the engine on this association
            item = _store_item(dataset, event.assoc.accepted_contexts)
            uid = item[3] if item else str(getattr(dataset, "SOPInstanceUID", ""))
            return item, uid, NOT_SENT

        yield from _sub_operations(answers, counts, store, syntax, encode)
    except Exception:
        log.exception("the C-GET handler %s failed", handler)
        yield GET_FAILED, None, {}
    finally:
        close = getattr(answers, "close", None)
        if close is not None:
            close()


def move_answers(handler, event, encode) -> Iterator[tuple]:
    """A pynetdicom C-MOVE handler's yields as the engine's answers; the sub-operations go
    over our own association to the destination the handler names."""
    from pynetdicom import StoragePresentationContexts

    from appliance.dicom.scu import AssociationFailed, Timeouts, associate, scu_ae

    syntax = UID(event.context.transfer_syntax)
    answers = handler(event)
    assoc = None
    try:
        destination = next(answers)
        if isinstance(destination, (int, Dataset)):  # refused before any sub-operation
            yield _refusal(destination)
            return
        if not destination or destination[0] is None:
            yield DESTINATION_UNKNOWN, None, {"error_comment": "move destination unknown"}
            return
        address, port = destination[0], destination[1]
        options = destination[2] if len(destination) > 2 else {}
        total = int(next(answers))
        counts = SubOperations(total)
        if total < 1:
            yield 0x0000, None, counts.fields()
            return
        ae = scu_ae(event.assoc.acceptor.ae_title or "EDGEBOX",
                    options.get("timeouts") or Timeouts(*DEFAULT_TIMEOUTS))
        ae.requested_contexts = options.get("contexts") or StoragePresentationContexts
        try:
            assoc = associate(ae, address, port, event.move_destination,
                              tls=options.get("tls"))
        except AssociationFailed as exc:
            log.warning("C-MOVE destination %s (%s:%s): %s", event.move_destination, address,
                        port, exc)
            yield DESTINATION_UNKNOWN, None, {"error_comment": "move destination refused"}
            return
        originator = event.assoc.requestor.ae_title

        def store(dataset) -> tuple:  # sent over our association to the destination
            try:
                answer = assoc.send_c_store(dataset, originator_aet=originator,
                                            originator_id=event.request.MessageID)
                status = int(answer.Status) if answer and "Status" in answer else None
            except (OSError, ValueError, AttributeError) as exc:  # no context, unreadable file
                log.warning("C-MOVE sub-operation to %s not sent: %s", event.move_destination,
                            exc)
                status = None
            return None, "" if status == 0x0000 else _uid_of(dataset), status

        yield from _sub_operations(answers, counts, store, syntax, encode)
    except Exception:
        log.exception("the C-MOVE handler %s failed", handler)
        yield MOVE_FAILED, None, {}
    finally:
        if assoc is not None and assoc.is_established:
            assoc.release()
        close = getattr(answers, "close", None)
        if close is not None:
            close()


def _sub_operations(answers, counts: SubOperations, store, syntax: UID,
                    encode) -> Iterator[tuple]:
    """The handler's (status, data set) yields after its count: each Pending data set is a
    C-STORE sub-operation, made by `store(dataset)` -> (item for the engine to send or None,
    SOP Instance UID, status when not sent by the engine); counted and answered Pending. The
    first status that is not Pending, or the handler's end, gives the final answer."""
    for status, dataset in answers:
        code, fields = _status_of(status)
        if code in PENDING and dataset is not None:
            item, uid, store_status = store(dataset)
            if item is not None:
                store_status = yield item  # the engine sends it and gives back the status
            counts.count(store_status, uid)
            yield 0xFF00, None, counts.fields()
            continue
        if code in PENDING:
            continue
        yield _final(code, fields, counts, syntax, encode)
        return
    yield _final(0x0000, {}, counts, syntax, encode)


def _uid_of(dataset) -> str:
    """The SOP Instance UID of a yielded data set or file (read only for a failure report)."""
    if isinstance(dataset, Dataset):
        return str(getattr(dataset, "SOPInstanceUID", ""))
    try:
        return str(dcmread(dataset, stop_before_pixels=True,
                           specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
    except Exception:  # unreadable: the file's name is all we have
        return Path(dataset).stem


def _refusal(status) -> tuple:
    """A handler's status yielded instead of the destination or the count: the request is
    refused before any sub-operation (e.g. 0xA900, the identifier does not fit the model)."""
    code, fields = _status_of(status)
    return code, None, fields


def _status_of(status) -> tuple[int, dict]:
    if isinstance(status, Dataset):
        fields = {"error_comment": str(status.ErrorComment)} if status.get("ErrorComment") \
            else {}
        return int(status.Status), fields
    return int(status), {}
