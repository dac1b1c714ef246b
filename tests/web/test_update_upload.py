"""Firmware upload on the web page: who may upload, which files are refused and why, the
upload streamed to the data partition with the install request for the root installer, and
the progress route the page polls."""

from __future__ import annotations

import json
import os

import pytest

from appliance.core.providers import Providers
from appliance.update import history, status
from appliance.update.status import InstallStatus
from appliance.update.web_provider import FirmwareUploads
from tests.web.conftest import page_csrf

BUNDLE = b"hsqs" + os.urandom(200 * 1024)  # starts like every RAUC bundle (squashfs)
UPLOAD = "/api/v1/update/upload"


@pytest.fixture
def firmware_web(web):
    from appliance.config.schema import ApplianceConfig

    firmware = FirmwareUploads(ApplianceConfig(), max_bytes=1024 * 1024)
    setup = web(providers=Providers(firmware=firmware))
    firmware.configure(setup.context.config)
    token = setup.setup_password()
    return setup, token, firmware


def upload(setup, token, body=BUNDLE, name="edge-2.0.raucb", **kwargs):
    headers = {"X-CSRF-Token": token, "Content-Type": "application/octet-stream"}
    return setup.client.post(UPLOAD, params={"filename": name}, content=body, headers=headers,
                             **kwargs)


def test_an_upload_is_stored_and_handed_to_the_installer(firmware_web):
    setup, token, firmware = firmware_web
    answer = upload(setup, token)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["file"] == "edge-2.0.raucb" and body["bytes"] == len(BUNDLE)
    stored = firmware.paths.incoming / "edge-2.0.raucb"
    assert stored.read_bytes() == BUNDLE
    assert [p.name for p in firmware.paths.incoming.iterdir()] == ["edge-2.0.raucb"]
    request = json.loads(firmware.paths.request.read_text())
    assert request == {"file": str(stored), "source": "web", "requested": body["requested"]}

    again = upload(setup, token)
    assert again.status_code == 409
    assert again.json()["detail"] == ("an uploaded bundle is already waiting to be installed: "
                                      "wait for that install to finish")


def test_a_streamed_upload_without_a_length_is_taken_too(firmware_web):
    setup, token, firmware = firmware_web
    chunks = (BUNDLE[i:i + 65536] for i in range(0, len(BUNDLE), 65536))
    assert upload(setup, token, body=chunks).status_code == 202
    assert (firmware.paths.incoming / "edge-2.0.raucb").read_bytes() == BUNDLE


@pytest.mark.parametrize("name, body, code, detail", [
    ("notes.txt", BUNDLE, 400, "notes.txt is not a firmware bundle: choose a .raucb file"),
    ("edge.raucb", b"", 400, "edge.raucb is empty: copy the bundle again"),
    ("edge.raucb", b"PK\x03\x04" + BUNDLE, 400, "edge.raucb is not a firmware bundle (it does "
     "not start like a RAUC bundle)"),
    ("edge.raucb", BUNDLE * 6, 413, "edge.raucb is 1.2 MiB, more than the 1.0 MiB a bundle "
     "may have"),
])
def test_wrong_files_are_refused_with_a_reason(firmware_web, name, body, code, detail):
    setup, token, firmware = firmware_web
    answer = upload(setup, token, body=body, name=name)
    assert answer.status_code == code
    assert answer.json()["detail"].startswith(detail)
    assert not firmware.paths.request.exists()
    assert not firmware.paths.incoming.exists() or list(firmware.paths.incoming.iterdir()) == []


def test_a_too_big_stream_is_cut_off_and_nothing_is_kept(firmware_web):
    setup, token, firmware = firmware_web
    chunks = (BUNDLE for _ in range(8))  # no Content-Length: counted while it arrives
    answer = upload(setup, token, body=chunks)
    assert answer.status_code == 413
    assert list(firmware.paths.incoming.iterdir()) == []
    assert not firmware.paths.request.exists()


def test_an_upload_needs_a_login_and_the_csrf_token(firmware_web):
    setup, token, firmware = firmware_web
    stranger = setup.new_client()
    answer = stranger.post(UPLOAD, params={"filename": "x.raucb"}, content=BUNDLE)
    assert answer.status_code == 401
    no_token = setup.client.post(UPLOAD, params={"filename": "x.raucb"}, content=BUNDLE)
    assert no_token.status_code == 403
    assert "X-CSRF-Token" in no_token.json()["detail"]
    assert not firmware.paths.incoming.exists() and not firmware.paths.request.exists()
    assert stranger.get("/api/v1/update/status").status_code == 401


def test_no_upload_while_an_install_runs(firmware_web):
    setup, token, firmware = firmware_web
    status.write(firmware.paths.status, InstallStatus(state="installing", percent=20))
    answer = upload(setup, token)
    assert answer.status_code == 409
    assert "being installed right now" in answer.json()["detail"]


def test_the_progress_route_shows_the_install_and_its_history(firmware_web):
    setup, token, firmware = firmware_web
    empty = setup.client.get("/api/v1/update/status").json()
    assert empty["status"]["state"] == "idle" and empty["history"] == []
    assert empty["pending"] is False and empty["max_bytes"] == 1024 * 1024

    status.write(firmware.paths.status, InstallStatus(
        state="failed", percent=100, source="web", message="refused, nothing changed: the "
        "bundle is not signed by a key this box trusts"))
    history.append(firmware.paths.history, "install-refused", source="web", reason="untrusted")
    answer = setup.client.get("/api/v1/update/status").json()
    assert answer["status"]["state"] == "failed"
    assert "not signed by a key this box trusts" in answer["status"]["message"]
    assert answer["history"][-1]["event"] == "install-refused"


def test_the_operations_page_offers_the_upload_with_progress(firmware_web):
    setup, token, firmware = firmware_web
    history.append(firmware.paths.history, "installed", slot="B", version="2.0", source="usb")
    status.write(firmware.paths.status, InstallStatus(
        state="succeeded", percent=100, source="usb", message="installed version 2.0 into "
        "slot B; it starts at the next reboot", finished="2026-11-22T10:00:00Z"))
    html = setup.client.get("/operations").text
    assert 'id="firmware-form"' in html and 'accept=".raucb"' in html
    form = html[html.index('id="firmware-form"'):html.index("</form>", html.index(
        'id="firmware-form"'))]
    assert page_csrf(form) == page_csrf(html)  # the page's token, sent as X-CSRF-Token
    assert '<script src="/static/update.js"></script>' in html
    assert "Last install (usb, 2026-11-22T10:00:00Z): succeeded: installed version 2.0" in html
    assert "installed slot B 2.0 (usb)" in html
    script = setup.client.get("/static/update.js")
    assert script.status_code == 200 and "upload.onprogress" in script.text


def test_without_the_update_service_the_page_says_so(web):
    setup = web()
    setup.setup_password()
    html = setup.client.get("/operations").text
    assert "firmware-form" not in html and "update.js" not in html
    assert setup.client.get("/api/v1/update/status").status_code == 404


def test_the_upload_is_described_in_the_openapi_schema(firmware_web):
    setup, _, _ = firmware_web
    schema = setup.client.get("/api/openapi.json").json()
    operation = schema["paths"][UPLOAD]["post"]
    assert "application/octet-stream" in operation["requestBody"]["content"]
    assert {"202", "400", "409", "413", "507"} <= set(operation["responses"])
    assert "get" in schema["paths"]["/api/v1/update/status"]
