"""The DICOM TLS key material is checked before anything listens on it: each problem named
with its file and a reason a technician can act on (issue 15)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.dicom.tls_files import EXPIRY_WARNING, TlsFileError, check_tls_files
from tests.pki import DAY, issue, key_pem, pem

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def files(tmp_path):
    """A hospital CA, the box's certificate signed by it, and the box's key."""
    ca_key, box_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = issue("Hospital CA", ca_key, "Hospital CA", ca_key, ca=True,
               start=NOW - 400 * DAY, end=NOW + 3650 * DAY)
    box = issue("edgebox.ct-room", box_key, "Hospital CA", ca_key, start=NOW - DAY,
                end=NOW + 365 * DAY)
    paths = {"cert": tmp_path / "box.pem", "key": tmp_path / "box.key", "ca": tmp_path / "ca.pem"}
    paths["cert"].write_bytes(pem(box) + pem(ca))  # with its chain
    paths["key"].write_bytes(key_pem(box_key))
    paths["ca"].write_bytes(pem(ca))
    return paths, ca, ca_key, box_key


def check(paths: dict[str, Path], now: datetime.datetime = NOW):
    return check_tls_files(paths["cert"], paths["key"], paths["ca"], now=now)


def refusal(paths: dict[str, Path], now: datetime.datetime = NOW) -> TlsFileError:
    with pytest.raises(TlsFileError) as caught:
        check(paths, now)
    return caught.value


def test_good_files_are_described(files):
    paths, *_ = files
    info = check(paths)
    assert info.subject == "CN=edgebox.ct-room" and info.issuer == "CN=Hospital CA"
    assert not info.expires_within(EXPIRY_WARNING, NOW)
    assert info.expires_within(EXPIRY_WARNING, NOW + 340 * DAY)


@pytest.mark.parametrize("which, damage, reason", [
    ("cert", "missing", "certificate file does not exist"),
    ("key", "missing", "private key file does not exist"),
    ("ca", "missing", "CA certificate file does not exist"),
    ("cert", "directory", "is a directory"),
    ("cert", "der", "not a PEM file"),
    ("cert", "garbage", "no readable certificate"),
    ("key", "garbage", "not a readable private key"),
    ("ca", "empty", "not a PEM file"),
])
def test_unusable_files_are_named_with_the_reason(files, which, damage, reason):
    paths, *_ = files
    path = paths[which]
    if damage == "missing":
        path.unlink()
    elif damage == "directory":
        path.unlink()
        path.mkdir()
    elif damage == "der":
        path.write_bytes(b"\x30\x82\x01\x00" + bytes(200))
    elif damage == "garbage":
        kind = b"CERTIFICATE" if which == "cert" else b"PRIVATE KEY"
        path.write_bytes(b"-----BEGIN " + kind + b"-----\nbm90IGl0\n-----END " + kind + b"-----\n")
    else:
        path.write_bytes(b"")
    error = refusal(paths)
    assert error.path == str(path) and reason in error.reason, error


def test_an_expired_or_future_certificate_is_refused(files):
    paths, *_ = files
    assert "expired on 2027-12-04" in refusal(paths, NOW + 366 * DAY).reason
    assert "not valid before 2026-12-03" in refusal(paths, NOW - 2 * DAY).reason


def test_a_key_of_another_certificate_is_refused(files):
    paths, *_ = files
    paths["key"].write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    error = refusal(paths)
    assert error.path == str(paths["key"])
    assert "does not belong to the certificate" in error.reason


def test_a_password_protected_key_is_refused_with_what_to_do(files):
    paths, _, _, box_key = files
    paths["key"].write_bytes(key_pem(box_key, b"secret"))
    assert "encrypted with a password" in refusal(paths).reason


def test_an_expired_ca_in_the_bundle_is_refused(files):
    paths, _, ca_key, _ = files
    old = issue("Old CA", ca_key, "Old CA", ca_key, ca=True, start=NOW - 800 * DAY,
                end=NOW - DAY)
    paths["ca"].write_bytes(paths["ca"].read_bytes() + pem(old))
    error = refusal(paths)
    assert error.path == str(paths["ca"]) and "CN=Old CA expired" in error.reason


def test_no_ca_bundle_is_needed_without_client_certificates(files):
    paths, *_ = files
    assert check_tls_files(paths["cert"], paths["key"], None, now=NOW).subject


def write_tls_config(path: Path, paths: dict[str, Path]) -> Path:
    path.write_text(
        "schema_version = 1\n[dicom.tls]\nenabled = true\n"
        f'certificate = "{paths["cert"]}"\nprivate_key = "{paths["key"]}"\n'
        f'ca_certificates = "{paths["ca"]}"\n')
    return path


def test_config_check_refuses_unusable_key_material_with_the_file(files, tmp_path, capsys):
    from appliance.cli import main

    paths, *_ = files
    config = write_tls_config(tmp_path / "appliance.toml", paths)
    assert main(["config", "check", str(config)]) == 0
    paths["key"].write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    assert main(["config", "check", str(config)]) != 0
    err = capsys.readouterr().err
    assert f"{config}: dicom.tls: {paths['key']}: this key does not belong" in err


def test_tls_without_its_files_or_on_the_plain_port_is_refused(tmp_path, capsys):
    from appliance.cli import main

    config = tmp_path / "appliance.toml"
    config.write_text("schema_version = 1\n[dicom.tls]\nenabled = true\n")
    assert main(["config", "check", str(config)]) != 0
    assert "certificate and private_key and ca_certificates are not set" in \
        capsys.readouterr().err
    config.write_text('schema_version = 1\n[dicom]\nport = 2762\n[dicom.tls]\nenabled = true\n'
                      'certificate = "a"\nprivate_key = "b"\nrequire_client_certificate = false\n')
    assert main(["config", "check", str(config)]) != 0
    assert "tls.port 2762 is the plain DICOM port too" in capsys.readouterr().err


def test_material_in_memory_is_checked_like_files_and_named_by_its_label(files):
    from appliance.dicom.tls_files import PemData, check_tls_material

    paths, *_ = files
    cert = PemData("uploaded certificate box.pem", paths["cert"].read_bytes())
    key = PemData("uploaded private key box.key", paths["key"].read_bytes())
    assert check_tls_material(cert, key, paths["ca"], now=NOW).subject == "CN=edgebox.ct-room"
    with pytest.raises(TlsFileError) as caught:
        check_tls_material(cert, key, paths["ca"], now=NOW + 366 * DAY)
    assert caught.value.path == "uploaded certificate box.pem"


def test_the_survey_describes_without_raising_and_the_warning_counts_days(files, tmp_path):
    from appliance.dicom.tls_files import survey

    paths, *_ = files
    found = survey(paths["cert"], paths["ca"])
    assert found.info.subject == "CN=edgebox.ct-room" and found.ca_subjects == ("CN=Hospital CA",)
    assert found.info.warning(NOW) == "" and found.info.expiry(NOW) == "ok"
    assert found.info.warning(NOW + 353 * DAY) == \
        "DICOM TLS certificate expires in 12 days (2027-12-04)"
    assert found.info.expiry(NOW + 366 * DAY) == "expired"
    assert found.info.warning(NOW + 366 * DAY) == "DICOM TLS certificate expired on 2027-12-04"
    assert survey("").info is None and survey("").error == ""
    missing = survey(tmp_path / "none.pem")
    assert missing.info is None and "certificate file does not exist" in missing.error


def test_the_running_appliance_watches_the_certificate_for_the_web_page():
    from appliance.component_list import build_components
    from appliance.config.schema import ApplianceConfig
    from appliance.core.events import EventBus
    from appliance.dicom.tls_watch import TlsCertificateWatch

    components = build_components(ApplianceConfig(), EventBus())
    watch = next(c for c in components if isinstance(c, TlsCertificateWatch))
    web = components[-1]
    assert web.context.providers.tls_certificate is watch
