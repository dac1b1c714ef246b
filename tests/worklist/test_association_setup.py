"""Association set-up cost, found while benchmarking the worklist (one findscu process per
query): pynetdicom deep-copies the server's supported presentation contexts for every
association it accepts. The DicomServer gives it a list whose copy is cheap but equal
(appliance/dicom/server.py, `CopiedContexts`)."""

from __future__ import annotations

import copy
import time

from appliance.components import dicom_services
from appliance.config.schema import ApplianceConfig
from appliance.dicom.server import CopiedContexts, DicomServer
from tests.conftest import free_port
from tests.worklist.conftest import findscu


def all_contexts():
    config = ApplianceConfig.model_validate({"dicom": {"port": free_port(),
                                                       "bind": "127.0.0.1"}})
    return DicomServer(config, dicom_services()).ae.supported_contexts


def test_the_copy_equals_a_deep_copy_and_shares_nothing_mutable():
    contexts = all_contexts()
    assert len(contexts) > 100  # storage, worklist, print, verification
    deep = copy.deepcopy(contexts)
    fast = copy.deepcopy(CopiedContexts(contexts))
    assert type(fast) is list and len(fast) == len(deep)
    for original, expected, got in zip(contexts, deep, fast, strict=True):
        assert vars(got) == vars(expected)
        assert got is not original and got.transfer_syntax is not original.transfer_syntax
        got.transfer_syntax.clear()  # whatever negotiation does to its copy...
        assert original.transfer_syntax == expected.transfer_syntax  # ...stays there


def test_the_copy_is_much_cheaper():
    contexts = all_contexts()
    started = time.process_time()
    copy.deepcopy(contexts)
    deep = time.process_time() - started
    started = time.process_time()
    for _ in range(10):
        copy.deepcopy(CopiedContexts(contexts))
    fast = (time.process_time() - started) / 10
    assert fast < deep / 10, (fast, deep)


def test_associations_are_negotiated_from_the_cheap_copy(tmp_path):
    from appliance.dicom.verification import VerificationService
    from appliance.worklist.scp import WorklistService
    from tests.worklist.conftest import ITEMS, load

    config = ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path)},
        "dicom": {"port": free_port(), "bind": "127.0.0.1"}})
    service = WorklistService(config)
    load(service, ITEMS)
    server = DicomServer(config, [VerificationService(), service])
    server.start()
    try:
        assert isinstance(server.server.contexts, CopiedContexts)
        for _ in range(2):  # the second association gets an unchanged copy
            [answer] = findscu(server.port, "PatientID=1001", "PatientName").answers
            assert str(answer.PatientName) == "DOE^JOHN"
    finally:
        server.stop(timeout=1)
