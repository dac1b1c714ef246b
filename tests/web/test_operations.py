"""Operations from the web page and the API: logs, backup and restore, identify, reboot,
factory reset, password change, and the pages of services that other components provide."""

from __future__ import annotations

import logging

import pytest

from appliance.config.loader import load_file
from appliance.core.providers import (
    PrinterState,
    PrintJobInfo,
    Providers,
    QueueDestination,
    WorklistSource,
)
from tests.web.conftest import PASSWORD, page_csrf


def csrf_of(setup, path="/operations") -> str:
    return page_csrf(setup.client.get(path).text)


def test_logs_view_and_download(logged_in):
    setup, token = logged_in
    logging.getLogger("appliance.test").warning("a line the technician needs to see")
    logging.getLogger("appliance.test").warning("and the newest one")
    page = setup.client.get("/logs")
    assert page.status_code == 200 and "a line the technician needs to see" in page.text
    assert page.text.index("and the newest one") < page.text.index("needs to see")
    download = setup.client.get("/logs/appliance.log/download")
    assert download.headers["content-disposition"] == 'attachment; filename="appliance.log"'
    assert "a line the technician needs to see" in download.text
    (setup.data_dir / "logs").mkdir()
    (setup.data_dir / "logs" / "hl7.log").write_text("MSH|^~\\&|RIS\n")
    assert setup.client.get("/api/v1/logs").json() == ["appliance.log", "hl7.log"]
    assert setup.client.get("/api/v1/logs/hl7.log").text == "MSH|^~\\&|RIS\n"


@pytest.mark.parametrize("name", ["..%2F..%2Fappliance.toml", "..%2Fweb%2Fadmin-password",
                                  "%2Fetc%2Fpasswd", "..", "hl7.log%00", "%2E%2E%2Fappliance.toml"])
def test_log_download_refuses_path_traversal(logged_in, name):
    setup, _ = logged_in
    (setup.data_dir / "logs").mkdir(exist_ok=True)
    (setup.data_dir / "logs" / "hl7.log").write_text("fine\n")
    for url in (f"/api/v1/logs/{name}", f"/logs/{name}/download", f"/logs?name={name}"):
        answer = setup.client.get(url)
        assert answer.status_code == 404, url
        assert "data_dir" not in answer.text and "scrypt" not in answer.text


def test_backup_and_restore(logged_in):
    setup, token = logged_in
    setup.config_path.write_text(setup.config_path.read_text() + "# kept comment\n")
    backup = setup.client.get("/operations/backup")
    assert backup.status_code == 200 and "# kept comment" in backup.text
    assert "attachment" in backup.headers["content-disposition"]
    assert setup.client.get("/api/v1/config/backup").text == backup.text

    bad = backup.text + '[dicom]\nae_title = "WAY-TOO-LONG-AE-TITLE"\n'
    refused = setup.client.post("/operations/restore", data={"csrf_token": csrf_of(setup)},
                                files={"file": ("x.toml", bad.encode())})
    assert refused.status_code == 400 and "restore refused, nothing changed" in refused.text
    assert "AE title must be at most 16 characters" in refused.text
    assert setup.config_path.read_text() == backup.text

    good = backup.text + '[dicom]\nae_title = "RESTORED"\n'
    answer = setup.client.post("/operations/restore", data={"csrf_token": csrf_of(setup)},
                               files={"file": ("x.toml", good.encode())}, follow_redirects=False)
    assert answer.status_code == 303
    assert load_file(setup.config_path).dicom.ae_title == "RESTORED"
    assert (setup.config_path.parent / "appliance.toml.before-restore").read_text() == backup.text
    setup.wait(lambda: setup.supervisor.config.dicom.ae_title == "RESTORED")

    api = setup.client.post("/api/v1/config/restore", headers={"X-CSRF-Token": token},
                            json={"toml": "[dicom]\nport = 70000\n"})
    assert api.status_code == 422 and api.json()["problems"][0]["key"] == "dicom.port"


def test_identify_publishes_the_identify_event(logged_in):
    setup, token = logged_in
    answer = setup.client.post("/operations/identify", data={"csrf_token": csrf_of(setup)})
    assert "the LEDs blink for 30 s" in answer.text
    assert setup.client.post("/api/v1/identify", headers={"X-CSRF-Token": token}).json() == \
        {"seconds": 30.0}
    assert [e.data for e in setup.events if e.topic == "identify"] == [{"seconds": 30.0}] * 2


def test_reboot_needs_confirmation(logged_in):
    setup, token = logged_in
    setup.client.post("/operations/reboot", data={"csrf_token": csrf_of(setup)})
    assert setup.reboots.calls == 0
    assert setup.client.post("/api/v1/reboot", headers={"X-CSRF-Token": token},
                             json={"confirm": "yes"}).status_code == 422
    assert setup.reboots.calls == 0
    answer = setup.client.post("/operations/reboot", data={"csrf_token": csrf_of(setup),
                                                           "confirm": "reboot"})
    assert "Rebooting" in answer.text and setup.reboots.calls == 1
    assert setup.client.post("/api/v1/reboot", headers={"X-CSRF-Token": token},
                             json={"confirm": "reboot"}).status_code == 200
    assert setup.reboots.calls == 2


def test_factory_reset_restores_defaults_and_asks_for_a_new_password(logged_in):
    setup, token = logged_in
    setup.client.patch("/api/v1/config", headers={"X-CSRF-Token": token},
                       json={"changes": {"dicom.ae_title": "CUSTOM"}})
    (setup.data_dir / "instances" / "kept.dcm").write_bytes(b"image")
    not_confirmed = setup.client.post("/operations/factory-reset",
                                      data={"csrf_token": csrf_of(setup), "confirm": "no"})
    assert not_confirmed.status_code == 200 and setup.context.passwords.is_set()
    answer = setup.client.post("/operations/factory-reset", data={
        "csrf_token": csrf_of(setup), "confirm": "reset"}, follow_redirects=False)
    assert answer.headers["location"] == "/setup"
    config = load_file(setup.config_path)
    assert config.dicom.ae_title == "EDGEBOX"
    assert config.device.data_dir == str(setup.data_dir)  # the images stay where they are
    assert (setup.data_dir / "instances" / "kept.dcm").read_bytes() == b"image"
    assert not setup.context.passwords.is_set()
    assert setup.client.get("/api/v1/config").status_code == 401  # the session ended
    setup.wait(lambda: setup.supervisor.config.dicom.ae_title == "EDGEBOX")


def test_change_password_ends_other_sessions(logged_in):
    setup, token = logged_in
    other = setup.new_client()
    setup.login(other)
    wrong = setup.client.post("/api/v1/password", headers={"X-CSRF-Token": token},
                              json={"current_password": "nope", "new_password": "x" * 12})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    page = setup.client.post("/operations/password", data={
        "csrf_token": csrf_of(setup), "current_password": PASSWORD,
        "new_password": "new password 1", "new_password_again": "new password 2"})
    assert page.status_code == 400 and "the two new passwords differ" in page.text
    ok = setup.client.post("/operations/password", data={
        "csrf_token": csrf_of(setup), "current_password": PASSWORD,
        "new_password": "new password 1", "new_password_again": "new password 1"})
    assert ok.status_code == 200 and "password changed" in ok.text
    assert setup.client.get("/api/v1/config").status_code == 200  # this session stays
    assert other.get("/api/v1/config").status_code == 401
    assert setup.new_client().post("/api/v1/login", json={"password": PASSWORD}
                                   ).status_code == 401
    assert setup.context.passwords.verify("new password 1")


def test_services_not_built_yet_answer_404_with_a_sentence(logged_in):
    setup, token = logged_in
    assert "not part of this appliance yet" in setup.client.get("/queue").text
    answer = setup.client.get("/api/v1/queue")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "the forward queue is not part of this appliance yet"}
    assert setup.client.get("/api/v1/print/jobs").status_code == 404
    assert setup.client.get("/api/v1/worklist").status_code == 404
    dashboard = setup.client.get("/").text
    assert "printing is not part of this appliance yet" in dashboard


LAST_ERROR = "pacs (PACS@10.0.0.5:104): association rejected: called AE title not recognised"


class RecordingQueue:
    """A forward queue exercising the provider interface the forwarder (issue 3) implements."""

    def __init__(self):
        self.calls = []

    def destinations(self):
        return [QueueDestination("pacs", pending=3, failed=1, held=False,
                                 oldest_age_seconds=42.0, last_error=LAST_ERROR)]

    def hold(self, destination):
        self.calls.append(("hold", destination))

    def release(self, destination):
        self.calls.append(("release", destination))

    def retry(self, destination):
        self.calls.append(("retry", destination))
        return 1

    def instances(self, destination, limit=20, offset=0):
        return [], 0


class RecordingPrint:
    def __init__(self):
        self.reprinted = []

    def printers(self):
        return [PrinterState("dryview", "normal")]

    def jobs(self, limit=50):
        return [PrintJobInfo("7", "2026-01-01 10:00", "done", "dryview"),
                PrintJobInfo(LONG_JOB, "2026-01-01 10:05", "done", "dryview")]

    def preview(self, job_id):
        return b"\x89PNG\r\n\x1a\n" if job_id == "7" else None

    def reprint(self, job_id):
        self.reprinted.append(job_id)


LONG_JOB = "1.2.826.0.1.3680043.8.498.123456789012345678901234567890123456789"


class RecordingWorklist:
    def __init__(self):
        self.added, self.imported, self.deleted = [], [], []

    def counts(self):
        return {"SCHEDULED": 2}

    def completed_since(self, since):
        return 3

    def sources(self):
        return [WorklistSource("hl7", 2, None)]

    def items(self, limit=200):
        return [{"id": "1", "PatientName": "DOE^JANE", "PatientID": "P1"}]

    def add(self, item):
        self.added.append(item)
        return {"id": "2", "notes": []}

    def import_file(self, data, fmt):
        self.imported.append((data, fmt))
        return {"imported": 1, "notes": []}

    def delete(self, item_id):
        self.deleted.append(item_id)
        return item_id == "1"


def test_provided_services_are_shown_and_operated(web):
    queue, printing, worklist = RecordingQueue(), RecordingPrint(), RecordingWorklist()
    setup = web(providers=Providers(queue=queue, printing=printing, worklist=worklist))
    token = setup.setup_password()
    dashboard = setup.client.get("/").text
    assert "pacs" in dashboard and "dryview" in dashboard and "SCHEDULED" in dashboard
    # a source's item count, not the dict's `items` method (seen in a field trial)
    assert "source hl7</th><td>2 items" in dashboard and "built-in method" not in dashboard
    assert 'id="worklist-completed-today">3<' in dashboard
    page = setup.client.get("/queue")
    # the last error in a row of its own, readable at full width
    for html in (dashboard, page.text):
        assert '<tr class="last-error"><td colspan' in html and LAST_ERROR in html
    setup.client.post("/queue/pacs/hold", data={"csrf_token": page_csrf(page.text)})
    assert setup.client.post("/api/v1/queue/pacs/retry", headers={"X-CSRF-Token": token}
                             ).json()["result"] == 1
    assert setup.client.post("/api/v1/queue/elsewhere/retry", headers={"X-CSRF-Token": token}
                             ).status_code == 404
    assert queue.calls == [("hold", "pacs"), ("retry", "pacs")]
    assert setup.client.get("/print/7/preview.png").headers["content-type"] == "image/png"
    assert setup.client.get("/print/8/preview.png").status_code == 404
    setup.client.post("/print/7/reprint", data={"csrf_token": page_csrf(page.text)})
    assert printing.reprinted == ["7"]
    print_page = setup.client.get("/print").text
    assert f'title="{LONG_JOB}">…{LONG_JOB[-12:]}</td>' in print_page
    worklist_page = setup.client.get("/worklist").text
    assert "DOE^JANE" in worklist_page and "hl7</th><td>2 items" in worklist_page
    setup.client.post("/worklist/add", data={"csrf_token": page_csrf(page.text),
                                             "PatientID": "P2", "Modality": "CT"})
    setup.client.post("/api/v1/worklist/import", headers={"X-CSRF-Token": token},
                      json={"format": "csv", "data": "PatientID\nP3\n"})
    assert setup.client.delete("/api/v1/worklist/1", headers={"X-CSRF-Token": token}
                               ).status_code == 200
    assert worklist.added == [{"PatientID": "P2", "Modality": "CT"}]
    assert worklist.imported == [(b"PatientID\nP3\n", "csv")]
    assert worklist.deleted == ["1"]
    metrics = setup.client.get("/metrics").text
    assert 'appliance_queue_depth{destination="pacs"} 3.0' in metrics


def test_the_association_history_has_its_own_page_not_the_landing_page(logged_in):
    """The association history no longer pushes the other cards off the screen: the landing
    page links to it, the history page lists every association, newest first (issue 18)."""
    setup, _ = logged_in
    for number in range(7):
        setup.bus.publish("association", peer=f"127.0.0.{number + 1}", calling_aet=f"CT{number}",
                          called_aet="EDGEBOX", operations={"C-STORE": number},
                          duration=0.5, outcome="released")
    dashboard = setup.client.get("/").text
    assert "CT6 → EDGEBOX" not in dashboard
    assert '<a href="/associations">association history</a>' in dashboard
    page = setup.client.get("/associations").text
    assert all(f"CT{number} → EDGEBOX" in page for number in range(7))
    assert page.index("CT6 →") < page.index("CT0 →")  # newest first
