"""A study arriving through the Storage SCP completes its worklist item in a running appliance:
matched by Study Instance UID, or by Accession Number when the modality made its own UID."""

from __future__ import annotations

import json

from tests.config.test_config_files import appliance_cli
from tests.forward.conftest import wait_until
from tests.storage.dicom_files import make_study, storescu
from tests.worklist.conftest import ITEMS, findscu


def accessions(port: int) -> set[str]:
    return {str(a.AccessionNumber) for a in findscu(port, "AccessionNumber").answers}


def test_stored_study_completes_its_worklist_item(appliance, tmp_path):
    proc, port, config_path = appliance({"worklist": {"expire_after_hours": 0.0}})
    items = tmp_path / "items.json"
    items.write_text(json.dumps(ITEMS, ensure_ascii=False))
    assert appliance_cli("worklist", "import", str(items), "--config", str(config_path),
                         cwd=tmp_path).returncode == 0
    before = accessions(port)
    assert {"A1001", "A1002"} <= before
    # A1001's study by its scheduled Study Instance UID.
    by_uid = make_study(tmp_path / "s1", 2, study_uid="1.2.3.1")
    # A1002 by accession number, with a Study Instance UID the modality made up itself.
    by_accession = make_study(tmp_path / "s2", 1)
    from pydicom import dcmread
    for path in by_accession:
        ds = dcmread(path)
        ds.AccessionNumber = "A1002"
        ds.save_as(path)
    assert storescu(port, by_uid + by_accession).returncode == 0
    wait_until(lambda: accessions(port) == before - {"A1001", "A1002"}, 20,
               what="A1001 and A1002 no longer scheduled")
