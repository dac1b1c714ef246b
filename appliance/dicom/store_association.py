"""A C-STORE SCU association on the native engine (engine/src/store_scu.cpp, DCMTK), for the
forwarder's destinations reached without TLS: the association request, each C-STORE and the
release run in C++ without the GIL, where pynetdicom did Python work for every P-DATA PDU
(docs/benchmarks.md, relay). Failures are told in the same sentences as every other SCU's
(scu.association_failure).

A stored file goes out as DCMTK reads and writes it in its stored transfer syntax (every value
unchanged; lengths and group lengths as DCMTK encodes them); a pydicom data set (coerced or
decompressed by the forwarder) is encoded by pynetdicom's public `dsutils.encode` first.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pynetdicom.dsutils import encode

from appliance.dicom.engine import _engine
from appliance.dicom.scu import AssociationFailed, Timeouts, association_failure

# DCMTK sets TCP_NODELAY on the sockets it opens only when this is 1 (the engine's own
# listener sets it itself); an explicit setting of the operator's is kept.
os.environ.setdefault("TCP_NODELAY", "1")

#: The largest PDU we receive (only C-STORE responses come back).
MAX_RECEIVE_PDU = 16384


class UnreadableFile(ValueError):
    """DCMTK cannot read a stored file (truncated, damaged): it is not sent."""


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


class StoreAssociation:
    """An established association with C-STOREs one at a time. `store_file` and
    `store_dataset` return the response's status, or None when none came (timed out, aborted,
    closed, or the peer took no data for the DIMSE timeout: the association is over)."""

    def __init__(self, native, target: str):
        self._native = native
        self.target = target
        #: (SOP class, transfer syntax) pairs the peer accepted
        self.accepted = {(sop_class, syntax) for sop_class, syntax in native.accepted}
        #: why the last store came to nothing ('' when it was answered)
        self.last_failure = ""
        #: the last store ended because the peer took no data for the DIMSE timeout
        self.stalled = False

    @property
    def is_established(self) -> bool:
        return self._native.established

    def store_file(self, path: Path, sop_class: str, sop_instance: str,
                   syntax: str) -> int | None:
        """A stored file in its transfer syntax `syntax`. FileNotFoundError when it is gone,
        UnreadableFile when DCMTK cannot read it (nothing was sent)."""
        return self._outcome(self._native.store_file(os.fspath(path), sop_class, sop_instance,
                                                     syntax), path)

    def store_dataset(self, dataset: Dataset, syntax: str) -> int | None:
        """A pydicom data set, encoded in `syntax` (ValueError when it cannot be)."""
        uid = UID(syntax)
        data = encode(dataset, uid.is_implicit_VR, uid.is_little_endian,
                      uid == DeflatedExplicitVRLittleEndian)
        if data is None:
            raise ValueError(f"the data set cannot be encoded in {uid.name}")
        return self._outcome(self._native.store_data_set(
            data, str(dataset.SOPClassUID), str(dataset.SOPInstanceUID), syntax), None)

    def _outcome(self, outcome: tuple, path: Path | None) -> int | None:
        kind, status, detail = outcome
        self.last_failure = "" if kind == "answered" else detail
        self.stalled = kind == "stalled"
        if kind == "answered":
            return status
        if kind in ("no answer", "stalled"):
            return None
        if kind == "missing":
            raise FileNotFoundError(f"stored file {path} is missing")
        if kind == "unreadable" and path is not None:
            raise UnreadableFile(detail)
        raise ValueError(detail)  # a data set that does not parse, or no accepted context

    def release(self) -> None:
        self._native.release()

    def abort(self) -> None:
        self._native.abort()


def open_store_association(host: str, port: int, calling_aet: str, called_aet: str,
                           contexts: list[tuple[str, str]], timeouts: Timeouts,
                           target: str = "") -> StoreAssociation:
    """An established association proposing `contexts` ((SOP class, transfer syntax) each),
    else AssociationFailed saying why."""
    started = time.monotonic()
    native, why = _engine.StoreScu.request(
        host=host, port=port, calling_aet=calling_aet, called_aet=called_aet,
        contexts=list(contexts), max_receive_pdu=MAX_RECEIVE_PDU,
        connection_timeout=_seconds(timeouts.connection), acse_timeout=_seconds(timeouts.acse),
        dimse_timeout=_seconds(timeouts.dimse))
    if native is not None:
        return StoreAssociation(native, target or f"{called_aet}@{host}:{port}")
    raise association_failure(
        rejected=(why["result"], why["source"], why["reason"]) if why["rejected"] else None,
        connected=why["connected"], error=why["text"], elapsed=time.monotonic() - started,
        connect_timeout=timeouts.connection, acse_timeout=timeouts.acse)


__all__ = ["AssociationFailed", "StoreAssociation", "UnreadableFile", "open_store_association"]
