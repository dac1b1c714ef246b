"""MPPS in the whole box (`appliance run`): offered next to Print Management on the one AE,
each N-request reaching its own service, and the worklist item's status shown by
`appliance worklist list`."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import BasicFilmSession, BasicGrayscalePrintManagementMeta

from appliance.config.schema import ApplianceConfig
from appliance.worklist.scp import WorklistService
from tests.mpps.conftest import MPPS, final, in_progress, worklist_list
from tests.worklist.conftest import ITEMS, load


def test_mpps_and_print_on_one_association_of_the_running_appliance(appliance, tmp_path):
    data_dir = tmp_path / "data"
    load(WorklistService(ApplianceConfig.model_validate(
        {"device": {"data_dir": str(data_dir)}})), ITEMS)
    _, port, config_path = appliance({"worklist": {"expire_after_hours": 0.0}})

    ae = AE(ae_title="CT1")
    ae.add_requested_context(MPPS)
    ae.add_requested_context(BasicGrayscalePrintManagementMeta)
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        assert {cx.abstract_syntax for cx in assoc.accepted_contexts} == \
            {MPPS, BasicGrayscalePrintManagementMeta}
        session = Dataset()
        session.NumberOfCopies = 1
        status, _ = assoc.send_n_create(session, BasicFilmSession, generate_uid(),
                                        meta_uid=BasicGrayscalePrintManagementMeta)
        assert status.Status == 0x0000  # print's N-CREATE, not MPPS's

        uid = generate_uid()
        assert assoc.send_n_create(in_progress(), MPPS, uid)[0].Status == 0x0000
        assert assoc.send_n_set(final(), MPPS, uid)[0].Status == 0x0000
    finally:
        assoc.release()

    listing = worklist_list(config_path, "--all")
    [line] = [row for row in listing.stdout.splitlines() if "A1001" in row]
    assert "COMPLETED" in line


def test_disabled_mpps_is_refused_by_the_running_appliance(appliance):
    _, port, _ = appliance({"mpps": {"enabled": False}})
    ae = AE(ae_title="CT1")
    ae.add_requested_context(MPPS)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGEBOX")
    try:
        assert assoc.is_established
        assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == \
            ["1.2.840.10008.1.1"]
        assert [str(cx.abstract_syntax) for cx in assoc.rejected_contexts] == [MPPS]
    finally:
        assoc.release()
