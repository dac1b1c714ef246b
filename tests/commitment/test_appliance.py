"""`appliance run` serves Storage Commitment: the component is built, hashes what is stored,
and the report comes back on the modality's association."""

from __future__ import annotations

from tests.commitment.conftest import action_information, committed_uids, ct_image


def test_appliance_run_commits_what_it_stored(appliance, modality):
    proc, port, _ = appliance()
    images = [ct_image(n) for n in range(2)]
    assoc = modality.associate(port)
    modality.store(assoc, images)
    assert modality.request(assoc, action_information(images)).Status == 0x0000
    event_type, report, where = modality.wait_report()
    assert (event_type, where) == (1, "same association")
    assert committed_uids(report) == {str(i.SOPInstanceUID) for i in images}
    proc.wait_log("Storage Commitment report")
