"""Live policy (`DicomEngine.update_policy`): a new AE title, allow-list or limit applies to
connections accepted after the call, associations already open keep theirs, and what the
listener or the services fixed (bind, port, contexts) cannot change this way. echoscu and
pynetdicom peers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import echoscu


def held_association(port: int, called: str = "EDGEBOX", calling: str = "PYSCU"):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established
    return assoc


def test_a_new_title_and_allow_list_apply_to_new_connections_only(engine):
    dicom_engine, _ = engine(allowed_calling_aets=("PYSCU", "MODALITY"))
    before = held_association(dicom_engine.port)
    try:
        dicom_engine.update_policy(dataclasses.replace(
            dicom_engine.settings, ae_title="NEWTITLE", allowed_calling_aets=("MODALITY",)))
        assert echoscu(dicom_engine.port, "NEWTITLE", "MODALITY").returncode == 0
        old_title = echoscu(dicom_engine.port, "EDGEBOX", "MODALITY")
        assert "Reason: Called AE Title Not Recognized" in old_title.stderr, old_title.stderr
        dropped = echoscu(dicom_engine.port, "NEWTITLE", "PYSCU")
        assert "Reason: Calling AE Title Not Recognized" in dropped.stderr, dropped.stderr
        # Accepted under the old policy: still served.
        assert before.send_c_echo().Status == 0
        assert before.send_c_echo().Status == 0
    finally:
        before.release()
    assert dicom_engine.settings.ae_title == "NEWTITLE"


def test_a_lower_association_limit_applies_to_the_next_association(engine):
    dicom_engine, _ = engine(max_associations=5)
    first = held_association(dicom_engine.port)
    try:
        assert echoscu(dicom_engine.port).returncode == 0
        dicom_engine.update_policy(dataclasses.replace(dicom_engine.settings,
                                                       max_associations=1))
        refused = echoscu(dicom_engine.port)
        assert "Result: Rejected Transient" in refused.stderr, refused.stderr
        assert first.send_c_echo().Status == 0
    finally:
        first.release()
    assert echoscu(dicom_engine.port).returncode == 0


ONLY_VERIFICATION = {"1.2.840.10008.1.1": ("1.2.840.10008.1.2",)}


@pytest.mark.parametrize("key, value", [("bind", "127.0.0.2"), ("port", 1),
                                        ("contexts", ONLY_VERIFICATION)])
def test_bind_port_and_contexts_cannot_change_this_way(engine, key, value):
    dicom_engine, _ = engine()
    settings = dicom_engine.settings
    with pytest.raises(ValueError, match=key):
        dicom_engine.update_policy(dataclasses.replace(settings, **{key: value}))
    assert dicom_engine.settings is settings
    assert echoscu(dicom_engine.port).returncode == 0


def test_invalid_values_are_refused_and_the_policy_kept(engine):
    dicom_engine, _ = engine()
    with pytest.raises(ValueError, match="max_associations"):
        dicom_engine.update_policy(dataclasses.replace(dicom_engine.settings,
                                                       max_associations=0))
    assert echoscu(dicom_engine.port).returncode == 0


def test_updates_while_connections_arrive(engine):
    dicom_engine, _ = engine(extra_called_aets=("BOTH",))
    settings = dicom_engine.settings
    stop = threading.Event()

    def flip():
        n = 0
        while not stop.is_set():
            n += 1
            dicom_engine.update_policy(dataclasses.replace(
                settings, ae_title=f"TITLE{n % 3}", max_pdu=16384 * (1 + n % 4)))

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        for _ in range(6):
            assert echoscu(dicom_engine.port, "BOTH").returncode == 0
    finally:
        stop.set()
        flipper.join()
