"""Per-service calling-AE allowlists (`[storage] allowed_calling_aets`,
`[worklist] allowed_calling_aets`), checked by each service's DIMSE handler.

The association itself is governed by `[dicom] allowed_calling_aets` (A-ASSOCIATE-RJ); these
lists narrow one service further. A caller not on a service's list gets the general DIMSE status
0x0124 *Refused: Not Authorized* (PS3.7 C.1.4 / Annex C): the request was understood and the
caller is simply not allowed to invoke it, which is neither Out of Resources (0xA7xx) nor
Cannot Understand (0xCxxx).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

NOT_AUTHORIZED = 0x0124


def caller_allowed(allowed: list[str], calling_aet: str) -> bool:
    """True when `allowed` is empty (no list: any caller the association policy let in) or
    names `calling_aet` (leading and trailing spaces are not significant)."""
    if not allowed:
        return True
    calling = calling_aet.strip()
    return any(calling == title.strip() for title in allowed)


def refusal_comment(service: str) -> str:
    """The Error Comment sent with 0x0124."""
    return f"calling AE title not allowed to use {service}"
