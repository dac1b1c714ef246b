"""The box's DICOM TLS certificate in the field (issue 15): shown on the dicom configuration
page, watched for its expiry (health warning, so the fault LED blinks, and /metrics), and
replaced by an upload that is checked before anything is written and applied live."""

from __future__ import annotations

import datetime
import os
import re
import stat

import pytest

from appliance.config.loader import load_file
from appliance.core.providers import Providers
from appliance.dicom.tls_files import (
    certificate_path,
    private_key_path,
    request_key_path,
)
from appliance.dicom.tls_watch import TlsCertificateWatch
from appliance.maintenance.led_signals import WARNING, signals
from tests.pki import HospitalCa, key_pem, new_key, pem
from tests.web.conftest import page_csrf

ROUTE = "/config/dicom/certificate"


@pytest.fixture(scope="module")
def ca():
    return HospitalCa()


def tls_web(web, extra_toml: str = ""):
    """A web page with the certificate watch supervised and handed to it as its provider."""
    providers = Providers()

    def components(config, bus):
        providers.tls_certificate = TlsCertificateWatch(config, bus)
        return [providers.tls_certificate]

    setup = web(extra_toml, providers, components)
    setup.setup_password()
    return setup


def configured(tmp_path, ca, days: float = 365.0, start_days_ago: float = 1.0, **more) -> str:
    """[dicom.tls] naming a certificate (valid for `days` more) and its key in tmp_path."""
    cert, key = ca.box(days=days, start_days_ago=start_days_ago)
    (tmp_path / "box.pem").write_bytes(cert)
    (tmp_path / "box.key").write_bytes(key)
    (tmp_path / "ca.pem").write_bytes(pem(ca.certificate))
    lines = [f'certificate = "{tmp_path / "box.pem"}"', f'private_key = "{tmp_path / "box.key"}"',
             f'ca_certificates = "{tmp_path / "ca.pem"}"', *(f"{k} = {v}" for k, v in more.items())]
    return "[dicom.tls]\n" + "\n".join(lines) + "\n"


def upload(setup, certificate: bytes | None, key: bytes | None = None, follow=False):
    page = setup.client.get("/config/dicom")
    files = {}
    if certificate is not None:
        files["certificate"] = ("box.pem", certificate, "application/x-pem-file")
    if key is not None:
        files["private_key"] = ("box.key", key, "application/x-pem-file")
    return setup.client.post(ROUTE, data={"csrf_token": page_csrf(page.text)}, files=files,
                             follow_redirects=follow)


def tls_error(html: str) -> str:
    match = re.search(r'id="tls-error">([^<]*)<', html)
    assert match, "no upload error on the page"
    return match.group(1).replace("&#39;", "'")


def metric(setup, name: str) -> float | None:
    text = setup.client.get("/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def latest_tls_event(setup) -> dict:
    return [e.data for e in setup.events if e.topic == "dicom_tls"][-1]


# -- shown --------------------------------------------------------------------------------------


def test_the_dicom_page_shows_the_certificate_its_ca_and_the_listener(web, tmp_path, ca):
    setup = tls_web(web, configured(tmp_path, ca, enabled="true", port=2763))
    page = setup.client.get("/config/dicom").text
    assert 'id="tls-subject">CN=edgebox.ct-room<' in page
    assert 'id="tls-issuer">CN=Hospital CA<' in page
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365))
    assert f"{until:%Y-%m-%d}" in re.search(r'id="tls-not-after">([^<]*)<', page).group(1)
    assert re.search(r'id="tls-days-left">36[45]<', page)
    assert "<li>CN=Hospital CA</li>" in page
    assert 'enabled</span> on port <code id="tls-port">2763<' in page
    assert 'id="tls-warning"' not in page
    assert setup.health.warnings == []
    assert 364 * 86400 < metric(setup, "appliance_dicom_tls_certificate_expiry_seconds") \
        <= 365 * 86400


def test_without_a_certificate_the_page_says_so_and_there_is_no_metric(web):
    setup = tls_web(web)
    page = setup.client.get("/config/dicom").text
    assert 'id="tls-none">No certificate configured.<' in page
    assert "disabled" in page
    assert metric(setup, "appliance_dicom_tls_certificate_expiry_seconds") is None
    assert latest_tls_event(setup)["state"] == "none" and setup.health.warnings == []


def test_an_unreadable_certificate_is_named_with_the_reason(web, tmp_path):
    (tmp_path / "box.pem").write_bytes(b"\x30\x82 not pem at all")
    setup = tls_web(web, f'[dicom.tls]\ncertificate = "{tmp_path / "box.pem"}"\n')
    answer = setup.client.get("/config/dicom")
    assert answer.status_code == 200
    shown = re.search(r'id="tls-unreadable">([^<]*)<', answer.text).group(1)
    assert shown == f"{tmp_path / 'box.pem'}: not a PEM file (no -----BEGIN line): a " \
                    "certificate is expected"
    assert "Traceback" not in answer.text
    assert setup.health.warnings == [f"DICOM TLS certificate: {shown}"]


# -- expiry: health warning (fault LED blinks) and /metrics ------------------------------------


def test_a_certificate_expiring_in_ten_days_is_a_warning_with_its_reason(web, tmp_path, ca):
    setup = tls_web(web, configured(tmp_path, ca, days=10.04))
    end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=10.04)
    reason = f"DICOM TLS certificate expires in 10 days ({end:%Y-%m-%d})"
    assert setup.health.warnings == [reason]
    assert signals(setup.health)["fault"] == WARNING
    assert latest_tls_event(setup)["state"] == "expiring"
    assert 9.9 * 86400 < metric(setup, "appliance_dicom_tls_certificate_expiry_seconds") \
        < 10.1 * 86400
    assert f'id="tls-warning">{reason}<' in setup.client.get("/config/dicom").text
    assert reason in setup.supervisor.status_line()  # the component's status says it too


def test_an_expired_certificate_is_a_warning_and_a_negative_metric(web, tmp_path, ca):
    setup = tls_web(web, configured(tmp_path, ca, days=-2.5, start_days_ago=90))
    end = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2.5)
    assert setup.health.warnings == [f"DICOM TLS certificate expired on {end:%Y-%m-%d}"]
    assert signals(setup.health)["fault"] == WARNING
    assert -2.6 * 86400 < metric(setup, "appliance_dicom_tls_certificate_expiry_seconds") \
        < -2.4 * 86400


# -- upload ---------------------------------------------------------------------------------


def test_a_good_certificate_and_key_are_written_configured_and_applied(web, ca):
    setup = tls_web(web)
    cert, key = ca.box(subject="edgebox.uploaded")
    answer = upload(setup, cert, key)
    assert answer.status_code == 303, answer.text
    cert_file, key_file = certificate_path(setup.data_dir), private_key_path(setup.data_dir)
    assert cert_file.read_bytes() == cert and key_file.read_bytes() == key
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    tls = load_file(setup.config_path).dicom.tls
    assert (tls.certificate, tls.private_key) == (str(cert_file), str(key_file))
    setup.wait(lambda: setup.supervisor.config.dicom.tls.certificate == str(cert_file))
    setup.wait(lambda: latest_tls_event(setup)["subject"] == "CN=edgebox.uploaded")
    page = setup.client.get("/config/dicom").text
    assert "DICOM TLS certificate and key installed; applied" in page
    assert 'id="tls-subject">CN=edgebox.uploaded<' in page


def test_a_second_upload_to_the_same_files_still_reconfigures(web, ca):
    setup = tls_web(web)
    assert upload(setup, *ca.box(subject="first")).status_code == 303
    setup.wait(lambda: latest_tls_event(setup)["subject"] == "CN=first")
    config_text = setup.config_path.read_text()
    cert, key = ca.box(subject="second")
    assert upload(setup, cert, key).status_code == 303
    assert setup.config_path.read_text() == config_text  # nothing to change in the file...
    assert private_key_path(setup.data_dir).read_bytes() == key
    # ...yet the running components were reconfigured: the watch read the new file at once
    setup.wait(lambda: latest_tls_event(setup)["subject"] == "CN=second")
    assert "(same files, new content)" in setup.client.get("/config/dicom").text


def test_without_a_key_the_one_from_create_csr_is_used(web, ca):
    setup = tls_web(web)
    request_key = new_key()
    request_key_path(setup.data_dir).parent.mkdir(parents=True)
    request_key_path(setup.data_dir).write_bytes(key_pem(request_key))
    cert, _ = ca.box(key=request_key)
    answer = upload(setup, cert, b"")  # the key field left empty
    assert answer.status_code == 303, answer.text
    assert private_key_path(setup.data_dir).read_bytes() == key_pem(request_key)
    assert load_file(setup.config_path).dicom.tls.private_key == \
        str(private_key_path(setup.data_dir))


def test_without_a_key_and_no_request_key_nothing_is_written(web, ca):
    setup = tls_web(web)
    cert, _ = ca.box()
    before = setup.config_path.read_text()
    answer = upload(setup, cert)
    assert answer.status_code == 400
    assert tls_error(answer.text) == (
        f"no private key uploaded, and no key from `appliance tls create-csr` at "
        f"{request_key_path(setup.data_dir)}: upload the certificate's key")
    assert setup.config_path.read_text() == before
    assert not certificate_path(setup.data_dir).exists()


def refused_uploads(ca):
    good_cert, good_key = ca.box()
    expired_cert, expired_key = ca.box(days=-1, start_days_ago=60)
    _, other_key = ca.box()
    locked = key_pem(new_key(), password=b"secret")
    big = good_cert + b"#" * (64 * 1024)
    return {
        "mismatched key": (good_cert, other_key, "uploaded private key box.key: this key does "
                           "not belong to the certificate in uploaded certificate box.pem "
                           "(CN=edgebox.ct-room)"),
        "expired": (expired_cert, expired_key, "uploaded certificate box.pem: the certificate "
                    "expired on "),
        "not PEM": (b"\x30\x82\x01\x00" + bytes(100), good_key, "uploaded certificate box.pem:"
                    " not a PEM file (no -----BEGIN line): a certificate is expected"),
        "password": (good_cert, locked, "uploaded private key box.key: the private key is "
                     "encrypted with a password"),
        "oversized": (big, good_key, "uploaded certificate box.pem: larger than 64 KiB"),
    }


@pytest.mark.parametrize("case", ["mismatched key", "expired", "not PEM", "password",
                                  "oversized"])
def test_a_bad_upload_is_refused_with_the_reason_and_nothing_changes(web, tmp_path, ca, case):
    setup = tls_web(web, configured(tmp_path, ca))
    before = setup.config_path.read_text()
    cert, key, message = refused_uploads(ca)[case]
    answer = upload(setup, cert, key)
    assert answer.status_code == 400
    assert message in tls_error(answer.text)
    assert tls_error(answer.text).startswith("refused, nothing changed: ")
    assert setup.config_path.read_text() == before
    assert not certificate_path(setup.data_dir).exists()
    assert not private_key_path(setup.data_dir).exists()
    assert 'id="tls-subject">CN=edgebox.ct-room<' in answer.text  # the current one still shown


def test_a_request_over_the_route_limit_is_refused_unread(web, ca):
    setup = tls_web(web)
    big = b"#" * (100 * 1024)
    answer = upload(setup, big, big)
    assert answer.status_code == 413
    assert "at most 192 KiB" in answer.text
    assert not certificate_path(setup.data_dir).exists()


def test_the_certificate_page_and_upload_need_a_login(web, ca):
    setup = tls_web(web)
    stranger = setup.new_client()
    page = stranger.get("/config/dicom", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    cert, key = ca.box()
    answer = stranger.post(ROUTE, files={"certificate": ("c.pem", cert),
                                         "private_key": ("k.pem", key)},
                           follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    # logged in, but without the form's CSRF token
    answer = setup.client.post(ROUTE, files={"certificate": ("c.pem", cert),
                                             "private_key": ("k.pem", key)},
                               follow_redirects=False)
    assert answer.status_code == 403
    assert not certificate_path(setup.data_dir).exists()
