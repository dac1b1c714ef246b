"""The presentation contexts a DICOM service declares for the engine to accept: an abstract
syntax, the transfer syntaxes accepted with it, and for C-GET's storage sub-operations the
SCP/SCU role accepted. Plain strings, because the engine negotiates natively and only reads the
UIDs: building pynetdicom `PresentationContext`s for the same declarations validated every UID
with pydicom (about 1,000 contexts with 40,000 transfer syntax entries for the storage and
Query/Retrieve classes, ~0.28 s of every start before the DICOM port opened). The UIDs are the
services' own constants; tests/test_conformance.py holds them to docs/conformance.md."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class DeclaredContext:
    """One context a service accepts. `scp_role`/`scu_role`: None when no SCP/SCU Role
    Selection is involved; `scp_role=True, scu_role=False` declares a storage class the
    requester may take the SCP role for (the C-STORE sub-operations of a C-GET)."""

    abstract_syntax: str
    transfer_syntax: tuple[str, ...]
    scp_role: bool | None = None
    scu_role: bool | None = None


def declare(abstract_syntax: str, transfer_syntaxes: Iterable[str], *,
            scp_role: bool | None = None, scu_role: bool | None = None) -> DeclaredContext:
    """A context for `abstract_syntax` with `transfer_syntaxes` in order of preference
    (pydicom `UID`s or strings; repeated ones kept once)."""
    return DeclaredContext(str(abstract_syntax),
                           tuple(dict.fromkeys(str(syntax) for syntax in transfer_syntaxes)),
                           scp_role, scu_role)
