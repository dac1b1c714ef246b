"""Orthanc as the workstation, through its REST API: it queries the running appliance
(`/modalities/{name}/query`, C-FIND at STUDY and SERIES level) and has the study moved to
itself (`/queries/{id}/retrieve`, C-MOVE with Orthanc as the `[[peers]]` destination)."""

from __future__ import annotations

from tests.conftest import free_port
from tests.forward.conftest import Orthanc, wait_until
from tests.query.conftest import STUDIES

S1 = STUDIES["S1"]["uid"]


def test_orthanc_queries_and_retrieves_a_study(archive_box, tmp_path):
    port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", appliance_port=port)
    box_port, _, files = archive_box({"dicom": {"port": port},
                                      "peers": [orthanc.peer("workstation")]})
    assert box_port == port
    orthanc.start()
    try:
        query = orthanc.post("/modalities/edgebox/query",
                             {"Level": "Study", "Query": {"PatientID": "P1",
                                                          "StudyInstanceUID": "",
                                                          "AccessionNumber": "",
                                                          "ModalitiesInStudy": ""}})
        answers = orthanc.get(f"/queries/{query['ID']}/answers?expand")
        found = {a["0020,000d"]["Value"]: a for a in answers}
        assert set(found) == {S1, STUDIES["S2"]["uid"]}
        assert found[S1]["0008,0050"]["Value"] == "ACC1"
        assert found[S1]["0008,0061"]["Value"] == "CT\\MR"

        orthanc.post(f"/queries/{query['ID']}/answers/"
                     f"{[a['0020,000d']['Value'] for a in answers].index(S1)}/retrieve",
                     {"TargetAet": orthanc.ae_title, "Synchronous": True})
        expected = sorted(p.stem for p in files["S1"])
        assert wait_until(lambda: sorted(orthanc.sop_instance_uids()) == expected,
                          what="the study moved to Orthanc")
    finally:
        orthanc.discard()
