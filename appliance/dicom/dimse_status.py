"""DIMSE status categories (PS3.7 Annex C), the one place that says which codes are Pending,
Success or Warning, for the services behind the engine (engine_dispatch.py,
engine_retrieve.py, the Storage Commitment report) and our SCUs (the upstream worklist, the
DICOM printer). Service-specific codes live with their service (print/dimse_status.py)."""

from __future__ import annotations

SUCCESS = 0x0000
#: Pending, and Pending with optional keys not supported (C-FIND, C-GET, C-MOVE).
PENDING = (0xFF00, 0xFF01)
#: The general Warning codes: 0x0001 (e.g. requested optional attributes not supported),
#: 0x0107 attribute list error, 0x0116 attribute value out of range; plus 0xBxxx.
WARNINGS = (0x0001, 0x0107, 0x0116)


def is_pending(code: int) -> bool:
    return code in PENDING


def is_warning(code: int) -> bool:
    return code in WARNINGS or 0xB000 <= code <= 0xBFFF


def is_success_or_warning(code: int) -> bool:
    """Whether the operation was done (and a response may carry a data set)."""
    return code == SUCCESS or is_warning(code)
