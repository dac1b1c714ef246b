"""`appliance tls create-csr`: a new key and a certificate request for the hospital's CA, run as
the real command. The request verifies with openssl, carries the subject and the names asked
for, and a certificate a CA issues from it goes with the key through the same check as
`[dicom.tls]` (issue 15). A key is never replaced without --force; bad input is exit 2 naming the
option and the value; a path that cannot be written is one line, exit 1."""

from __future__ import annotations

import datetime
import os
import pathlib
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from appliance.dicom.tls_files import check_tls_files, request_csr_path, request_key_path
from tests.config.test_config_files import appliance_cli
from tests.conftest import REPO, write_config

DAY = datetime.timedelta(days=1)
NOBODY = 65534


@pytest.fixture
def box(tmp_path):
    """A configuration whose data directory is in tmp_path, and a function running the command
    with it."""
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "appliance.toml", {"device": {"data_dir": str(data_dir)}})

    def create_csr(*args: str) -> subprocess.CompletedProcess:
        return appliance_cli("tls", "create-csr", "--config", str(config), *args, cwd=tmp_path)

    create_csr.data_dir = data_dir
    return create_csr


def load_csr(path) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(path.read_bytes())


def alt_names(subject_with_extensions) -> tuple[list[str], list[str]]:
    names = subject_with_extensions.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    return (names.get_values_for_type(x509.DNSName),
            [str(a) for a in names.get_values_for_type(x509.IPAddress)])


def sign_by_test_ca(csr: x509.CertificateSigningRequest, tmp_path):
    """What the hospital's CA does: a CA of its own issues a certificate from the request,
    copying its subject and subjectAltName."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    certificate = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name)
                   .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
                   .add_extension(san, critical=False)
                   .sign(ca_key, hashes.SHA256()))
    cert_path, ca_path = tmp_path / "box-cert.pem", tmp_path / "ca.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return cert_path, ca_path, certificate


def test_default_paths_are_in_the_data_directory(tmp_path):
    assert request_key_path(tmp_path) == tmp_path / "dicom" / "tls" / "request-key.pem"
    assert request_csr_path(tmp_path) == tmp_path / "dicom" / "tls" / "request.csr"


def test_request_verifies_and_carries_the_subject_and_names(box, tmp_path):
    result = box("--common-name", "edgebox.ct-room.example", "--organization", "St. Elsewhere",
                 "--organizational-unit", "Radiology", "--country", "de",
                 "--dns", "edgebox", "--dns", "Edge.Example.org", "--ip", "10.20.30.40",
                 "--ip", "fd00::7")
    assert result.returncode == 0, result.stderr
    key_path, csr_path = request_key_path(box.data_dir), request_csr_path(box.data_dir)
    verified = subprocess.run(["openssl", "req", "-verify", "-noout", "-in", str(csr_path)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    csr = load_csr(csr_path)
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert csr.subject.rfc4514_string() == \
        "CN=edgebox.ct-room.example,OU=Radiology,O=St. Elsewhere,C=DE"
    dns, ips = alt_names(csr)
    assert dns == ["edgebox.ct-room.example", "edgebox", "edge.example.org"]
    assert ips == ["10.20.30.40", "fd00::7"]
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert csr.public_key() == key.public_key()
    # what was written is printed, with the next step
    assert f"private key: {key_path}" in result.stdout
    assert f"request:     {csr_path}" in result.stdout
    assert "CN=edgebox.ct-room.example,OU=Radiology,O=St. Elsewhere,C=DE" in result.stdout
    assert "DNS:edgebox.ct-room.example, DNS:edgebox, DNS:edge.example.org, " \
           "IP:10.20.30.40, IP:fd00::7" in result.stdout
    assert "hospital's CA" in result.stdout and "[dicom.tls] certificate" in result.stdout


def test_certificate_from_the_request_passes_the_tls_check(box, tmp_path):
    assert box("--common-name", "edgebox.example").returncode == 0
    key_path = request_key_path(box.data_dir)
    cert_path, ca_path, certificate = sign_by_test_ca(load_csr(request_csr_path(box.data_dir)),
                                                      tmp_path)
    info = check_tls_files(cert_path, key_path, ca_path)
    assert info.subject == "CN=edgebox.example" and info.issuer == "CN=Hospital Test CA"
    assert alt_names(certificate) == (["edgebox.example"], [])


def test_key_is_private(box):
    assert box("--common-name", "edgebox").returncode == 0
    key_path = request_key_path(box.data_dir)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert not [p for p in key_path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_common_name_defaults_to_the_host_name(box):
    assert box().returncode == 0
    csr = load_csr(request_csr_path(box.data_dir))
    host = socket.gethostname()
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == host
    assert alt_names(csr)[0] == [host.lower()]


def test_an_ip_address_as_common_name_is_an_ip_alt_name(box):
    assert box("--common-name", "192.168.7.20", "--ip", "192.168.7.20").returncode == 0
    assert alt_names(load_csr(request_csr_path(box.data_dir))) == ([], ["192.168.7.20"])


def test_existing_key_is_kept_without_force_and_replaced_with_it(box):
    assert box("--common-name", "first").returncode == 0
    key_path, csr_path = request_key_path(box.data_dir), request_csr_path(box.data_dir)
    key, csr = key_path.read_bytes(), csr_path.read_bytes()

    refused = box("--common-name", "second")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"{key_path}: already exists" in refused.stderr and "--force" in refused.stderr
    assert "nothing written" in refused.stderr
    assert key_path.read_bytes() == key and csr_path.read_bytes() == csr

    # a request alone (its key kept elsewhere) is not replaced either
    other_key = box.data_dir / "other-key.pem"
    refused = box("--common-name", "second", "--key", str(other_key))
    assert refused.returncode == 1 and f"{csr_path}: already exists" in refused.stderr
    assert not other_key.exists() and csr_path.read_bytes() == csr

    replaced = box("--common-name", "second", "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert key_path.read_bytes() != key
    new_csr = load_csr(csr_path)
    assert new_csr.subject.rfc4514_string() == "CN=second"
    assert new_csr.public_key() == serialization.load_pem_private_key(
        key_path.read_bytes(), password=None).public_key()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_ec_key_and_chosen_paths(box, tmp_path):
    key_path, csr_path = tmp_path / "keys" / "box.key", tmp_path / "out" / "box.csr"
    result = box("--key-type", "ec", "--common-name", "edgebox", "--key", str(key_path),
                 "--csr", str(csr_path))
    assert result.returncode == 0, result.stderr
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert "EC P-256" in result.stdout
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    verified = subprocess.run(["openssl", "req", "-verify", "-noout", "-in", str(csr_path)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    cert_path, ca_path, _ = sign_by_test_ca(load_csr(csr_path), tmp_path)
    check_tls_files(cert_path, key_path, ca_path)
    assert not request_key_path(box.data_dir).exists()


@pytest.mark.parametrize("args, message", [
    (["--ip", "300.1.2.3"], "--ip: '300.1.2.3' is not an IPv4 or IPv6 address"),
    (["--ip", "10.0.0.1", "--ip", "pacs.example"],
     "--ip: 'pacs.example' is not an IPv4 or IPv6 address"),
    (["--country", "DEU"], "--country: 'DEU' is not a two-letter country code"),
    (["--country", "D1"], "--country: 'D1' is not a two-letter country code"),
    (["--dns", "bad_name.example"], "--dns: 'bad_name.example' is not a DNS host name"),
    (["--common-name", ""], "--common-name: '' is empty"),
    (["--organization", "x" * 65], "--organization: '" + "x" * 65 + "' is longer than 64"),
])
def test_bad_input_is_a_usage_error_naming_option_and_value(box, args, message):
    result = box("--common-name", "edgebox", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"appliance: tls create-csr: {message}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert not (box.data_dir / "dicom").exists()


def test_unknown_key_type_is_a_usage_error(box):
    result = box("--key-type", "dsa")
    assert result.returncode == 2 and "--key-type" in result.stderr and "'dsa'" in result.stderr


def as_nobody() -> list[str]:
    """Run as an unprivileged user when the tests run as root, for whom no mode bit stops a
    write (setpriv, util-linux)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot test a permission refusal")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def public_dir():
    """A directory an unprivileged user can reach (pytest's tmp_path is root's only)."""
    path = tempfile.mkdtemp(prefix="csr-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield pathlib.Path(path)
    finally:
        for directory, _, _ in os.walk(path):
            os.chmod(directory, 0o755)
        shutil.rmtree(path)


@pytest.mark.parametrize("under, reason", [
    ("", "cannot write in this directory: permission denied"),
    ("tls", "cannot create the directory: Permission denied"),
])
def test_unwritable_directory_is_one_line_and_exit_1(public_dir, under, reason):
    locked = public_dir / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        os.chown(locked, NOBODY, NOBODY)
    locked.chmod(0o500)
    config = write_config(public_dir / "appliance.toml",
                          {"device": {"data_dir": str(public_dir / "data")}})
    config.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [*as_nobody(), sys.executable, "-m", "appliance", "tls", "create-csr", "--config",
         str(config), "--common-name", "edgebox", "--key", str(locked / under / "key.pem"),
         "--csr", str(locked / under / "request.csr")],
        capture_output=True, text=True, cwd=public_dir, env=env, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == f"appliance: tls create-csr: {locked / under}: {reason}\n"
    assert list(locked.iterdir()) == []


def test_path_under_a_file_is_one_line_and_exit_1(box, tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    result = box("--common-name", "edgebox", "--key", str(tmp_path / "a-file" / "key.pem"))
    assert result.returncode == 1
    assert result.stderr == f"appliance: tls create-csr: {tmp_path / 'a-file'}: is not a " \
                            "directory\n"
    assert not request_csr_path(box.data_dir).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_as_root_the_files_belong_to_the_data_directory_owner(box):
    box.data_dir.mkdir()
    os.chown(box.data_dir, NOBODY, NOBODY)
    assert box("--common-name", "edgebox").returncode == 0
    key_path = request_key_path(box.data_dir)
    for path in (key_path, key_path.parent, key_path.parent.parent,
                 request_csr_path(box.data_dir)):
        assert (path.stat().st_uid, path.stat().st_gid) == (NOBODY, NOBODY), path


def test_host_names_as_rfc_1123_has_them():
    from appliance.dicom.tls_request import is_host_name

    assert is_host_name("edge-1.ct.example") and is_host_name("localhost")
    assert is_host_name("*.example.org", wildcard=True)
    assert not is_host_name("*.example.org") and not is_host_name("-edge.example")
    assert not is_host_name("10.1.2.3") and not is_host_name("a" * 64)
