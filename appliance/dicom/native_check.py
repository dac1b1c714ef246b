"""The structural check of `appliance.dicom.dataset_check`, done natively by the engine
(`_engine.check_file`, src/dataset_check.cpp): the same walk, refusals and messages, run by the
association's thread on the received file before the store callback, without the GIL.

The tables that decide the walk are pydicom's, handed over once (`rules`): its transfer
syntaxes (implicit VR, byte order, encapsulated), its explicit VR length classes, and its data
dictionary's sequences (in implicit VR a defined-length sequence is known only from it). What
the native check does not decide itself (deflated data sets, a transfer syntax it has no rule
for, sequences nested more than 64 deep, a cut File Meta element header, a Number of Frames of
more than 18 digits, a file it cannot open) comes back "deferred", and `checked_file` then runs
the Python check: the verdicts are the Python check's by construction (tests/storage/
test_native_check.py runs both over the malformed corpus).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from functools import lru_cache

from pydicom.datadict import DicomDictionary, RepeatersDictionary, masks
from pydicom.uid import UID, UID_dictionary
from pydicom.valuerep import EXPLICIT_VR_LENGTH_16, EXPLICIT_VR_LENGTH_32

from appliance.dicom.dataset_check import CheckedFile, MalformedDataSet, check_received_file
from appliance.dicom.engine import _engine

#: What the engine hands the store callback: ("parsed", transfer syntax, {tag: raw value}),
#: ("malformed", reason) or ("deferred", why).
NativeVerdict = tuple


def _syntaxes() -> dict[str, tuple[bool, bool, bool]]:
    """Every transfer syntax the Python check walks itself (not the deflated one)."""
    rules = {}
    for uid in UID_dictionary:
        ts = UID(uid)
        if ts.is_transfer_syntax and not ts.is_deflated:
            rules[str(uid)] = (ts.is_implicit_VR, ts.is_little_endian, ts.is_encapsulated)
    return rules


@lru_cache(maxsize=8)
def _rules(wanted: frozenset[int]) -> _engine.CheckRules:
    sequence = [tag for tag, entry in DicomDictionary.items() if entry[0] == "SQ"]
    other = [tag for tag, entry in DicomDictionary.items() if entry[0] != "SQ"]
    repeaters = [(mask2, mask1 & mask2, RepeatersDictionary[mask_x][0] == "SQ")
                 for mask_x, (mask1, mask2) in masks.items()]
    return _engine.CheckRules(
        syntaxes=_syntaxes(), sequence_tags=sequence, other_tags=other, repeaters=repeaters,
        long_vrs=[str(vr) for vr in EXPLICIT_VR_LENGTH_32],
        short_vrs=[str(vr) for vr in EXPLICIT_VR_LENGTH_16], wanted=sorted(wanted))


def rules(wanted: Collection[int] = frozenset()) -> _engine.CheckRules:
    """The native check's tables, copying out the raw values of the `wanted` top-level tags
    (made once per set of tags)."""
    return _rules(frozenset(wanted))


def native_verdict(path: str | os.PathLike, wanted: Collection[int] = frozenset()) -> NativeVerdict:
    """The native check's verdict on a file, as the engine hands it to the store callback."""
    return _engine.check_file(os.fspath(path), rules(wanted))


def checked_file(path: str | os.PathLike, verdict: NativeVerdict | None,
                 wanted: Collection[int] = frozenset()) -> CheckedFile:
    """`check_received_file(path, wanted)`'s answer from the native verdict: its values, its
    MalformedDataSet; a deferred (or missing) verdict runs the Python check."""
    if verdict is not None and verdict[0] == "parsed":
        return CheckedFile(verdict[1], dict(verdict[2]))
    if verdict is not None and verdict[0] == "malformed":
        raise MalformedDataSet(verdict[1])
    return check_received_file(path, wanted)
