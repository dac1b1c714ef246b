"""The Conformance Statement lists exactly the presentation contexts the AE accepts, and a
real association accepts each of them and nothing else."""

from __future__ import annotations

import re

import pytest
from pydicom.uid import JPEGBaseline8Bit
from pynetdicom import AE
from pynetdicom.sop_class import (
    CompositeInstanceRootRetrieveMove,
    CTImageStorage,
    Verification,
)

from appliance.component_list import dicom_services
from appliance.config.schema import ApplianceConfig
from appliance.dicom.engine_server import EngineServer
from tests.conftest import REPO, free_port

DOC = REPO / "docs" / "conformance.md"


def _rows(section: str, width: int) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == width and re.fullmatch(r"[0-9.]+", cells[1]):
            rows.append(cells)
    return rows


def documented_contexts() -> set[tuple[str, str]]:
    """Section 3's explicit pairs (5-column rows), plus storage: every SOP class of Appendix A
    with every transfer syntax of section 3.1's 2-column table."""
    text = DOC.read_text()
    section = text.split("## 3. Presentation contexts accepted", 1)[1].split("\n## ", 1)[0]
    pairs = {(cells[1], cells[3]) for cells in _rows(section, 5)}
    storage_syntaxes = [cells[1] for cells in _rows(section, 2)]
    appendix = text.split("## Appendix A. Storage SOP classes accepted", 1)[1].split("\n## ")[0]
    storage_classes = [cells[1] for cells in _rows(appendix, 2)]
    assert storage_syntaxes and storage_classes, "storage tables missing from conformance.md"
    pairs |= {(c, ts) for c in storage_classes for ts in storage_syntaxes}
    return pairs


def accepted_contexts(server: EngineServer) -> set[tuple[str, str]]:
    return {(abstract, syntax)
            for abstract, syntaxes in server.contexts.items() for syntax in syntaxes}


@pytest.fixture
def server():
    config = ApplianceConfig.model_validate({"dicom": {"port": free_port(), "bind": "127.0.0.1"}})
    srv = EngineServer(config, dicom_services())
    srv.start()
    yield srv
    srv.stop(timeout=1)


def test_documented_contexts_equal_the_ae_supported_contexts(server):
    documented = documented_contexts()
    assert documented, "no presentation contexts found in docs/conformance.md"
    assert documented == accepted_contexts(server)


def test_each_documented_context_is_accepted_on_the_wire(server):
    # Thousands of storage pairs: one association per transfer syntax and up to 128 SOP
    # classes, each context proposing only that transfer syntax.
    by_syntax: dict[str, list[str]] = {}
    for sop_class, transfer_syntax in sorted(documented_contexts()):
        by_syntax.setdefault(transfer_syntax, []).append(sop_class)
    for transfer_syntax, classes in by_syntax.items():
        for start in range(0, len(classes), 128):
            chunk = classes[start:start + 128]
            ae = AE(ae_title="CONFTEST")
            for sop_class in chunk:
                ae.add_requested_context(sop_class, [transfer_syntax])
            assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
            assert assoc.is_established, transfer_syntax
            accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                        for cx in assoc.accepted_contexts}
            assert accepted == {(c, transfer_syntax) for c in chunk}, transfer_syntax
            assoc.release()


def test_contexts_not_documented_are_rejected(server):
    ae = AE(ae_title="CONFTEST")
    ae.add_requested_context(Verification, [JPEGBaseline8Bit])
    ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2.4.94"])  # JPIP: not listed
    ae.add_requested_context("1.2.826.0.1.3680043.9.9999.1")  # private SOP class: no
    ae.add_requested_context(CompositeInstanceRootRetrieveMove)  # not offered
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="EDGEBOX")
    assert assoc.is_established
    assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [str(Verification)]
    assert len(assoc.rejected_contexts) == 4
    assoc.release()
