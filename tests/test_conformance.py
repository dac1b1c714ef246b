"""The Conformance Statement lists exactly the presentation contexts the AE accepts, and a
real association accepts each of them and nothing else."""

from __future__ import annotations

import re

import pytest
from pydicom.uid import JPEGBaseline8Bit
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from appliance.components import dicom_services
from appliance.config.schema import ApplianceConfig
from appliance.dicom.server import DicomServer
from tests.conftest import REPO, free_port

DOC = REPO / "docs" / "conformance.md"


def documented_contexts() -> set[tuple[str, str]]:
    text = DOC.read_text()
    section = text.split("## 3. Presentation contexts accepted", 1)[1].split("\n## ", 1)[0]
    pairs = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[0-9.]+", cells[1]):
            pairs.add((cells[1], cells[3]))
    return pairs


def accepted_contexts(server: DicomServer) -> set[tuple[str, str]]:
    return {(str(cx.abstract_syntax), str(ts))
            for cx in server.ae.supported_contexts for ts in cx.transfer_syntax}


@pytest.fixture
def server():
    config = ApplianceConfig.model_validate({"dicom": {"port": free_port(), "bind": "127.0.0.1"}})
    srv = DicomServer(config, dicom_services())
    srv.start()
    yield srv
    srv.stop(timeout=1)


def test_documented_contexts_equal_the_ae_supported_contexts(server):
    documented = documented_contexts()
    assert documented, "no presentation contexts found in docs/conformance.md"
    assert documented == accepted_contexts(server)


def test_each_documented_context_is_accepted_on_the_wire(server):
    for sop_class, transfer_syntax in sorted(documented_contexts()):
        ae = AE(ae_title="CONFTEST")
        ae.add_requested_context(sop_class, [transfer_syntax])
        assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
        assert assoc.is_established, (sop_class, transfer_syntax)
        assert [str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts] == [transfer_syntax]
        assoc.release()


def test_contexts_not_documented_are_rejected(server):
    ae = AE(ae_title="CONFTEST")
    ae.add_requested_context(Verification, [JPEGBaseline8Bit])
    ae.add_requested_context(CTImageStorage)  # storage is not offered yet
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
    assert assoc.is_established
    assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [str(Verification)]
    assert len(assoc.rejected_contexts) == 2
    assoc.release()
