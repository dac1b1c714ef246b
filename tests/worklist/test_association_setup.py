"""Association set-up, found while benchmarking the worklist (one findscu process per query):
the DICOM server offers the contexts of every service, and each association is negotiated
from them afresh. (The pynetdicom server deep-copied its 177 contexts per association and
needed a cheap copy; the native engine reads its settings' contexts without copying.)"""

from __future__ import annotations

from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification

from appliance.component_list import dicom_services
from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from tests.conftest import free_port
from tests.worklist.conftest import findscu


def test_the_server_offers_every_services_contexts():
    config = ApplianceConfig.model_validate({"dicom": {"port": free_port(),
                                                       "bind": "127.0.0.1"}})
    contexts = EngineServer(config, dicom_services()).contexts
    assert len(contexts) > 100  # storage, worklist, print, verification
    assert ModalityWorklistInformationFind in contexts and Verification in contexts
    assert all(contexts.values())  # every abstract syntax with its transfer syntaxes


def test_associations_are_negotiated_again_and_again(tmp_path):
    from appliance.dicom.verification import VerificationService
    from appliance.worklist.scp import WorklistService
    from tests.worklist.conftest import ITEMS, load

    config = ApplianceConfig.model_validate({
        "device": {"data_dir": str(tmp_path)},
        "dicom": {"port": free_port(), "bind": "127.0.0.1"}})
    service = WorklistService(config)
    load(service, ITEMS)
    server = EngineServer(config, [VerificationService(), service])
    server.start()
    try:
        for _ in range(2):  # the second association sees the same contexts
            [answer] = findscu(server.port, "PatientID=1001", "PatientName").answers
            assert str(answer.PatientName) == "DOE^JOHN"
    finally:
        server.stop(timeout=1)
