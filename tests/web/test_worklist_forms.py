"""The web page's "Add an item" form and the JSON API over the real worklist provider: a value
that does not fit its VR is refused naming the attribute and nothing is stored; a loose date
(2026-12-03) is stored as 20261203 and the answer says so, with the generated Study Instance
UID."""

from __future__ import annotations

from appliance.config.schema import ApplianceConfig
from appliance.core.providers import Providers
from appliance.worklist.scp import WorklistService
from appliance.worklist.web_provider import WorklistWebProvider
from tests.web.conftest import page_csrf
from tests.worklist.test_validation import HEADER, csv_row


def worklist_web(web):
    """A web app whose worklist is the real provider over a store in its data directory."""
    setup = web()  # only for its data directory
    config = ApplianceConfig.model_validate({"device": {"data_dir": str(setup.data_dir)}})
    service = WorklistService(config)
    return web(providers=Providers(worklist=WorklistWebProvider(service))), service


def test_web_form_refuses_a_bad_date_and_reports_a_normalised_one(web):
    setup, service = worklist_web(web)
    setup.setup_password()
    form = {"PatientID": "W1", "PatientName": "WEB^ONE", "Modality": "CT",
            "ScheduledProcedureStepStartDate": "03.12.2026",
            "ScheduledProcedureStepStartTime": "14:00",
            "RequestedProcedureDescription": "CT HEAD"}
    page = setup.client.get("/worklist")
    answer = setup.client.post("/worklist/add", data={**form,
                                                      "csrf_token": page_csrf(page.text)})
    assert "item refused: item: ScheduledProcedureStepStartDate (0040,0002): " \
        "&#39;03.12.2026&#39; is not a DICOM date" in answer.text
    assert service.store.count() == 0
    form["ScheduledProcedureStepStartDate"] = "2026-12-03"
    answer = setup.client.post("/worklist/add", data={**form,
                                                      "csrf_token": page_csrf(answer.text)})
    assert ("ScheduledProcedureStepStartDate (0040,0002) &#39;2026-12-03&#39; stored as "
            "&#39;20261203&#39;") in answer.text
    assert "StudyInstanceUID generated: 2.25." in answer.text
    [row] = service.store.select()
    assert row.item.value("ScheduledProcedureStepStartDate") == "20261203"


def test_api_add_refuses_a_bad_date_and_reports_a_normalised_one(web):
    setup, service = worklist_web(web)
    token = setup.setup_password()
    item = {"PatientID": "A1", "PatientName": "API^ONE", "Modality": "MR",
            "ScheduledProcedureStepStartDate": "20261350",
            "RequestedProcedureDescription": "MR KNEE"}
    answer = setup.client.post("/api/v1/worklist", json=item, headers={"X-CSRF-Token": token})
    assert answer.status_code == 422
    assert answer.json()["detail"] == ("item: ScheduledProcedureStepStartDate (0040,0002): "
                                       "'20261350' is not a calendar date (month must be in "
                                       "1..12)")
    item["ScheduledProcedureStepStartDate"] = "2026-12-03"
    answer = setup.client.post("/api/v1/worklist", json=item, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert ("ScheduledProcedureStepStartDate (0040,0002) '2026-12-03' stored as '20261203'"
            in body["notes"])
    assert any(note.startswith("StudyInstanceUID generated: 2.25.") for note in body["notes"])
    imported = setup.client.post("/api/v1/worklist/import", headers={"X-CSRF-Token": token},
                                 json={"format": "csv", "data": HEADER + csv_row("20261350")})
    assert imported.status_code == 422
    assert "line 2: ScheduledProcedureStepStartDate (0040,0002)" in imported.json()["detail"]
    assert service.store.count() == 1


def test_web_import_lists_a_readable_number_of_notes(web):
    setup, service = worklist_web(web)
    token = setup.setup_password()
    rows = "".join(csv_row(date="2026-12-03", pid=f"P{n}") for n in range(30))
    answer = setup.client.post("/api/v1/worklist/import", headers={"X-CSRF-Token": token},
                               json={"format": "csv", "data": HEADER + rows})
    assert answer.status_code == 200, answer.text
    notes = answer.json()["notes"]
    assert answer.json()["imported"] == 30
    assert notes[0] == ("line 2: ScheduledProcedureStepStartDate (0040,0002) '2026-12-03' "
                        "stored as '20261203'")
    assert notes[20:] == ["... and 10 more value(s) stored in DICOM form",
                          "30 item(s) without a StudyInstanceUID were given one"]


def test_the_page_import_reads_the_uploaded_file_as_it_goes(web):
    """The page's upload is read from the spooled file item by item, all or nothing."""
    from tests.worklist.test_import_streams import csv_text

    setup, service = worklist_web(web)
    setup.setup_password()
    bad = csv_text(300, last_line="X1,DOE^X,,,A-BAD,,,CT HEAD,CT,CT3,20261350,080000,S-BAD,D")
    page = setup.client.get("/worklist")
    answer = setup.client.post("/worklist/import", data={"csrf_token": page_csrf(page.text)},
                               files={"file": ("week.csv", bad.encode(), "text/csv")})
    assert "import refused: line 302: ScheduledProcedureStepStartDate" in answer.text
    assert service.store.count() == 0
    answer = setup.client.post("/worklist/import", data={"csrf_token": page_csrf(answer.text)},
                               files={"file": ("week.csv", csv_text(300).encode(), "text/csv")})
    assert "imported 300 items" in answer.text
    assert service.store.count() == 300
