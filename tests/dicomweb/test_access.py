"""Who may use DICOMweb: the web page's logged-in session or an API token made with
`appliance api-token create`; nobody else (401 with WWW-Authenticate), a revoked token no more,
and a token never for a change."""

from __future__ import annotations

import requests
from dicomweb_client.api import DICOMwebClient

from tests.dicomweb.conftest import STUDIES

S1 = STUDIES["S1"]["uid"]


def test_without_login_or_token_401(box):
    for path in ("/studies", f"/studies/{S1}", f"/studies/{S1}/metadata"):
        answer = requests.get(f"{box.dicomweb}{path}")
        assert answer.status_code == 401, path
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    answer = requests.get(f"{box.dicomweb}/studies", headers={"Authorization": "Basic eDp5"})
    assert answer.status_code == 401


def test_token_created_used_listed_and_revoked(box):
    made = box.cli("api-token", "create", "ward-viewer")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40
    # the token itself is not in the database, only its hash
    database = box.config_path.parent / "data" / "db" / "appliance.sqlite3"
    assert token.encode() not in database.read_bytes()
    assert box.cli("api-token", "create", "ward-viewer").returncode == 2  # name taken

    client = DICOMwebClient(box.dicomweb, headers={"Authorization": f"Bearer {token}"})
    studies = client.search_for_studies(search_filters={"PatientID": "P1"})
    assert len(studies) == 2
    assert client.retrieve_instance(S1, f"{S1}.1", f"{S1}.1.1").SOPInstanceUID == f"{S1}.1.1"
    # read-only GETs of the JSON API too, never a change nor the configuration backup
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{box.web}/api/v1/peers", headers=bearer).status_code == 200
    assert requests.get(f"{box.web}/api/v1/config/backup", headers=bearer).status_code == 403
    assert requests.post(f"{box.web}/api/v1/identify", headers=bearer).status_code in (401, 403)

    listed = box.cli("api-token", "list")
    assert "ward-viewer" in listed.stdout and "last used 20" in listed.stdout
    assert token not in listed.stdout

    wrong = requests.get(f"{box.dicomweb}/studies", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers[
        "WWW-Authenticate"]

    revoked = box.cli("api-token", "revoke", "ward-viewer")
    assert revoked.returncode == 0, revoked.stderr
    answer = requests.get(f"{box.dicomweb}/studies", headers=bearer)
    assert answer.status_code == 401
    assert box.cli("api-token", "revoke", "ward-viewer").returncode == 2
    assert box.cli("api-token", "create", "bad name").returncode == 2


def test_logged_out_session_refused(box):
    session = box.logged_in()
    assert session.get(f"{box.dicomweb}/studies").status_code == 200
    csrf = session.post(f"{box.web}/api/v1/login", json={"password": "correct horse battery"}
                        ).json()["csrf_token"]
    session.post(f"{box.web}/api/v1/logout", headers={"X-CSRF-Token": csrf})
    assert session.get(f"{box.dicomweb}/studies").status_code == 401
