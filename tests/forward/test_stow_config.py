"""`[[peers]]` with protocol = "dicomweb": every wrong key refused at config check with the key
and the reason, DICOM peers still need their DIMSE keys, secrets masked where the configuration
is shown, and `requests` not loaded by the forwarder until a DICOMweb peer needs it."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

from tests import pki
from tests.config.test_config_files import appliance_cli
from tests.conftest import REPO

WEB = '[[peers]]\nname = "pacs"\nprotocol = "dicomweb"\n'
URL = 'url = "https://pacs.example.org/dicom-web"\n'

BAD = {
    "dicomweb without url": (WEB, "peers[0].url", 'required with protocol = "dicomweb"'),
    "url not http(s)": (WEB + 'url = "ftp://pacs/dw"\n', "peers[0].url",
                        "must be an http:// or https:// URL"),
    "basic without username": (WEB + URL + 'auth = "basic"\npassword = "x"\n',
                               "peers[0].username", 'required with auth = "basic"'),
    "token and token_file": (WEB + URL + 'auth = "bearer"\ntoken = "t"\n'
                             'token_file = "/etc/token"\n', "peers[0].token_file",
                             "set token or token_file, not both"),
    "bearer without token": (WEB + URL + 'auth = "bearer"\n', "peers[0].token_file",
                             'auth = "bearer" needs token or token_file'),
    "unknown auth": (WEB + URL + 'auth = "digest"\n', "peers[0].auth",
                     "must be one of 'none', 'basic' or 'bearer'"),
    "dicomweb with host": (WEB + URL + 'host = "10.0.0.5"\n', "peers[0].host",
                           'not used with protocol = "dicomweb"'),
    "dicom peer with url": ('[[peers]]\nname = "pacs"\nae_title = "PACS"\nhost = "10.0.0.5"\n'
                            + URL, "peers[0].url", 'only used with protocol = "dicomweb"'),
    "dicom peer without host": ('[[peers]]\nname = "pacs"\nae_title = "PACS"\n',
                                "peers[0].host", "required key is missing"),
    "password with auth none": (WEB + URL + 'password = "x"\n', "peers[0].password",
                                'not used with auth = "none"'),
    "mpps forward_to a dicomweb peer": (WEB + URL + '[mpps]\nforward_to = ["pacs"]\n', "mpps",
                                        'forward_to[0]: peer \'pacs\' has protocol = '
                                        '"dicomweb"; this needs a DICOM (DIMSE) peer'),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_dicomweb_peer_refused_with_key_and_reason(tmp_path, case):
    text, key, reason = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert f"{path}: {key}: {reason}" in result.stderr, result.stderr


def test_good_dicomweb_peer_and_destination_accepted_and_secrets_masked(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(WEB + URL + 'auth = "basic"\nusername = "alice"\n'
                    'password = "s3cret-pass"\n'
                    '[[peers]]\nname = "vna"\nprotocol = "dicomweb"\n'
                    'url = "http://127.0.0.1:8042/dicom-web"\nauth = "bearer"\n'
                    'token = "tok-abc-123"\n'
                    '[[destinations]]\npeer = "pacs"\n[[destinations]]\npeer = "vna"\n')
    assert appliance_cli("config", "check", str(path), cwd=tmp_path).returncode == 0
    shown = appliance_cli("config", "show", "--config", str(path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "s3cret-pass" not in shown.stdout and "tok-abc-123" not in shown.stdout
    assert shown.stdout.count('"**********"') == 2
    assert 'username = "alice"' in shown.stdout


def test_requests_stays_blocked_until_a_dicomweb_peer_needs_it():
    """`appliance run` blocks `requests` (sys.modules entry None): importing the forwarder and
    the STOW-RS sender keeps it blocked; only sending to a DICOMweb peer lifts it."""
    code = ("import sys; sys.modules['requests'] = None; "
            "import appliance.forward.worker, appliance.forward.stow_sender, "
            "appliance.dicom.verification; print(sys.modules['requests'] is None); "
            "from appliance.dicom.dicomweb_peer import import_requests; "
            "print(import_requests().__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "requests"]


def file_cases(tmp_path) -> dict[str, tuple[str, str, str]]:
    """(peer keys, key, reason) for DICOMweb peer files `appliance config check` refuses."""
    missing = tmp_path / "missing.pem"
    folder = tmp_path / "folder"
    folder.mkdir()
    not_pem = tmp_path / "not-pem.crt"
    not_pem.write_bytes(b"\x30\x82\x01\x0a binary DER, not PEM")
    expired = tmp_path / "expired-ca.pem"
    key, now = pki.new_key(), datetime.datetime.now(datetime.UTC)
    expired.write_bytes(pki.pem(pki.issue("Old CA", key, "Old CA", key, ca=True,
                                          start=now - 10 * pki.DAY, end=now - 2 * pki.DAY)))
    return {
        "ca missing": (f'ca_certificates = "{missing}"\n', "peers[0].ca_certificates",
                       f"{missing}: CA certificate file does not exist"),
        "ca a directory": (f'ca_certificates = "{folder}"\n', "peers[0].ca_certificates",
                           f"{folder}: is a directory, not a CA certificate file"),
        "ca not PEM": (f'ca_certificates = "{not_pem}"\n', "peers[0].ca_certificates",
                       f"{not_pem}: not a PEM file"),
        "ca expired": (f'ca_certificates = "{expired}"\n', "peers[0].ca_certificates",
                       f"{expired}: every CA certificate in it has expired"),
        "token_file missing": (f'auth = "bearer"\ntoken_file = "{missing}"\n',
                               "peers[0].token_file", f"{missing}: file does not exist"),
        "token_file a directory": (f'auth = "bearer"\ntoken_file = "{folder}"\n',
                                   "peers[0].token_file", f"{folder}: is a directory"),
    }


@pytest.mark.parametrize("case", ["ca missing", "ca a directory", "ca not PEM", "ca expired",
                                  "token_file missing", "token_file a directory"])
def test_unreadable_dicomweb_peer_files_refused_by_config_check(tmp_path, case):
    keys, key, reason = file_cases(tmp_path)[case]
    path = tmp_path / "files.toml"
    path.write_text(WEB + URL + keys)
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert f"{path}: {key}: {reason}" in result.stderr, result.stderr


def test_readable_dicomweb_peer_files_pass_config_check(tmp_path):
    ca = pki.make_pki(tmp_path / "pki", {}) / "ca.pem"
    token = tmp_path / "token"
    token.write_text("tok\n")
    path = tmp_path / "files.toml"
    path.write_text(WEB + URL + f'auth = "bearer"\ntoken_file = "{token}"\n'
                    f'ca_certificates = "{ca}"\n')
    result = appliance_cli("config", "check", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The loader itself does not read the files (as for [dicom.tls]): `config show` works.
    ca.unlink()
    assert appliance_cli("config", "show", "--config", str(path),
                         cwd=tmp_path).returncode == 0
