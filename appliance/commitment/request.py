"""The N-ACTION of a Storage Commitment request (PS3.4 J.3.2), checked: the SOP class's
well-known instance, Action Type ID 1, and an Action Information with a Transaction UID
(0008,1195) and a Referenced SOP Sequence (0008,1199) whose every item has a Referenced SOP
Class UID (0008,1150) and Referenced SOP Instance UID (0008,1155). A request that fails is
refused with the N-ACTION status of PS3.7 10.1.4.1.10 and the offending attribute named in
Error Comment (0000,0902)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom import Dataset

from appliance.core.errors import ApplianceError

SOP_CLASS = "1.2.840.10008.1.20.1"          # Storage Commitment Push Model SOP Class
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_COMMITMENT = 1                        # Action Type ID of "Request Storage Commitment"

NO_SUCH_SOP_INSTANCE = 0x0112
INVALID_ARGUMENT_VALUE = 0x0115
NO_SUCH_ACTION = 0x0123
PROCESSING_FAILURE = 0x0110
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class CommitmentRefusal(ApplianceError):
    """An N-ACTION refused: its status and the Error Comment that says why."""

    def __init__(self, code: int, comment: str):
        super().__init__(comment)
        self.code = code
        self.comment = comment

    def response(self) -> Dataset:
        status = Dataset()
        status.Status = self.code
        status.ErrorComment = self.comment[:64]
        return status


@dataclass(frozen=True)
class CommitmentRequest:
    """What an accepted N-ACTION asks: a transaction and its (SOP class, instance) pairs."""

    transaction_uid: str
    items: tuple[tuple[str, str], ...]


def _uid(ds: Dataset, keyword: str, tag: str, where: str = "") -> str:
    if keyword not in ds:
        raise CommitmentRefusal(INVALID_ARGUMENT_VALUE, f"{keyword} {tag} missing{where}")
    value = str(ds[keyword].value or "").strip().rstrip("\0")
    if not value:
        raise CommitmentRefusal(INVALID_ARGUMENT_VALUE, f"{keyword} {tag} empty{where}")
    if len(value) > 64 or not _UID.fullmatch(value):
        raise CommitmentRefusal(INVALID_ARGUMENT_VALUE, f"{keyword} {tag} not a UID{where}")
    return value


def parse(instance_uid: str | None, action_type: int | None,
          information: Dataset | None) -> CommitmentRequest:
    """The request, or CommitmentRefusal."""
    if (instance_uid or "").strip() != WELL_KNOWN_INSTANCE:
        raise CommitmentRefusal(NO_SUCH_SOP_INSTANCE, "Requested SOP Instance must be "
                                f"{WELL_KNOWN_INSTANCE}")
    if action_type != REQUEST_COMMITMENT:
        raise CommitmentRefusal(NO_SUCH_ACTION, f"Action Type ID {action_type}: only 1")
    if information is None:
        raise CommitmentRefusal(INVALID_ARGUMENT_VALUE, "no Action Information")
    transaction = _uid(information, "TransactionUID", "(0008,1195)")
    if "ReferencedSOPSequence" not in information:
        raise CommitmentRefusal(INVALID_ARGUMENT_VALUE,
                                "ReferencedSOPSequence (0008,1199) missing")
    sequence = information.ReferencedSOPSequence
    if not sequence:
        raise CommitmentRefusal(INVALID_ARGUMENT_VALUE,
                                "ReferencedSOPSequence (0008,1199) empty")
    items = []
    for number, item in enumerate(sequence, 1):
        where = f" in item {number}"
        items.append((_uid(item, "ReferencedSOPClassUID", "(0008,1150)", where),
                      _uid(item, "ReferencedSOPInstanceUID", "(0008,1155)", where)))
    return CommitmentRequest(transaction, tuple(items))
