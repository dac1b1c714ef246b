"""A throwaway PKI for DICOM over TLS: a CA and the certificates it issues, written as the PEM
files DCMTK's `+tls KEY CERT +cf CA` and the engine's [dicom.tls] read. Shared by the TLS
tests and bench/bench_tls.py, so both speak to the same kind of certificate."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue(subject: str, key, issuer: str, issuer_key, ca: bool = False,
          start: datetime.datetime | None = None,
          end: datetime.datetime | None = None) -> x509.Certificate:
    """A certificate for `key` named `subject`, signed by `issuer_key` as `issuer`; valid from
    a day ago for 30 days unless `start`/`end` say otherwise."""
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start or now - DAY).not_valid_after(end or now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else \
        serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def make_pki(directory: Path, leaves: dict[str, str], ca: str = "ca",
             ca_name: str = "Hospital CA") -> Path:
    """Writes the CA as `{ca}.pem`/`{ca}.key` and, for each `stem: common name` of `leaves`, a
    certificate the CA issues as `{stem}.pem` with its key `{stem}.key`; returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = new_key()
    (directory / f"{ca}.pem").write_bytes(pem(issue(ca_name, ca_key, ca_name, ca_key, ca=True)))
    (directory / f"{ca}.key").write_bytes(key_pem(ca_key))
    for stem, common in leaves.items():
        key = new_key()
        (directory / f"{stem}.pem").write_bytes(pem(issue(common, key, ca_name, ca_key)))
        (directory / f"{stem}.key").write_bytes(key_pem(key))
    return directory


def dcmtk_tls(directory: Path, stem: str, ca: str = "ca") -> list[str]:
    """DCMTK's arguments for TLS as `stem` (its key and certificate), trusting the CA `ca`."""
    return ["+tls", str(directory / f"{stem}.key"), str(directory / f"{stem}.pem"),
            "+cf", str(directory / f"{ca}.pem")]


def reissue(directory: Path, stem: str, subject: str, ca: str, days: int = 30) -> None:
    """A new key and certificate `stem` for `subject` from the CA files `ca`.pem/.key, valid
    until `days` from now (negative: expired that long ago)."""
    ca_certificate = x509.load_pem_x509_certificate((directory / f"{ca}.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / f"{ca}.key").read_bytes(), None)
    issuer = ca_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    now = datetime.datetime.now(datetime.UTC)
    end = now + days * DAY
    key = new_key()
    certificate = issue(subject, key, issuer, ca_key, start=min(now, end) - DAY, end=end)
    (directory / f"{stem}.pem").write_bytes(pem(certificate))
    (directory / f"{stem}.key").write_bytes(key_pem(key))


class HospitalCa:
    """A CA in memory, valid for ten years around now; `box()` issues the box's certificate
    as PEM bytes (for uploads and checks that do not need the files)."""

    def __init__(self, subject: str = "Hospital CA"):
        self.subject = subject
        self.key = new_key()
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = issue(subject, self.key, subject, self.key, ca=True,
                                 start=now - 400 * DAY, end=now + 3650 * DAY)

    def box(self, subject: str = "edgebox.ct-room", days: float = 365.0,
            key=None, start_days_ago: float = 1.0) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) valid from `start_days_ago` until `days` from now."""
        key = key or new_key()
        now = datetime.datetime.now(datetime.UTC)
        cert = issue(subject, key, self.subject, self.key,
                     start=now - datetime.timedelta(days=start_days_ago),
                     end=now + datetime.timedelta(days=days))
        return pem(cert), key_pem(key)


def issue_server(directory: Path, stem: str, host: str = "127.0.0.1", ca: str = "ca") -> None:
    """An HTTPS server's key and certificate `stem` from the CA files `ca`.pem/.key, for the
    IP address `host` (in subjectAltName, where HTTPS clients look for it)."""
    import ipaddress

    ca_certificate = x509.load_pem_x509_certificate((directory / f"{ca}.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / f"{ca}.key").read_bytes(), None)
    now = datetime.datetime.now(datetime.UTC)
    key = new_key()
    certificate = (
        x509.CertificateBuilder().subject_name(name(host))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(ca_key, hashes.SHA256()))
    (directory / f"{stem}.pem").write_bytes(pem(certificate))
    (directory / f"{stem}.key").write_bytes(key_pem(key))
