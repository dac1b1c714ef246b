"""Status codes of the Print Management service (PS3.4 H.4, PS3.7 C) and the exception that
carries one out of the state machine to the DIMSE response (which codes are warnings:
appliance/dicom/dimse_status.py)."""

from __future__ import annotations

import logging

from pydicom import Dataset

from appliance.core.errors import ApplianceError

log = logging.getLogger(__name__)

SUCCESS = 0x0000
# general (PS3.7 Annex C)
ATTRIBUTE_LIST_ERROR = 0x0107      # warning: attributes not supported were ignored
VALUE_OUT_OF_RANGE = 0x0116        # warning
NO_SUCH_ATTRIBUTE = 0x0105
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_INSTANCE = 0x0111
NO_SUCH_INSTANCE = 0x0112
NO_SUCH_SOP_CLASS = 0x0118
CLASS_INSTANCE_CONFLICT = 0x0119
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
NO_SUCH_ACTION = 0x0123
UNRECOGNISED_OPERATION = 0x0211
RESOURCE_LIMITATION = 0x0213
# print specific (PS3.4 H.4)
MEMORY_ALLOCATION_NOT_SUPPORTED = 0xB600
EMPTY_SESSION = 0xB602
EMPTY_PAGE = 0xB603
DEMAGNIFIED = 0xB604
DENSITY_OUT_OF_RANGE = 0xB605
CROPPED = 0xB609
DECIMATED = 0xB60A
NO_FILM_BOXES = 0xC600
QUEUE_FULL = 0xC602
IMAGE_LARGER_THAN_BOX = 0xC603


class PrintStatus(ApplianceError, ValueError):
    """A request the SCP refuses: `code` is the DIMSE status, the message its Error Comment."""

    def __init__(self, code: int, comment: str):
        super().__init__(comment)
        self.code = code
        self.comment = comment


class Warnings:
    """Warnings gathered while applying a request; the response carries the first one."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []

    def add(self, code: int, comment: str) -> None:
        self.items.append((code, comment))

    def response(self, **fields) -> Dataset:
        """A status data set: the first warning (or Success), all comments joined."""
        status = Dataset()
        status.Status = self.items[0][0] if self.items else SUCCESS
        if self.items:
            status.ErrorComment = "; ".join(c for _, c in self.items)[:64]
        for keyword, value in fields.items():
            if value is not None:
                setattr(status, keyword, value)
        return status


def failure(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status
