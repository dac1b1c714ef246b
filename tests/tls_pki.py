"""A throwaway PKI for the DICOM TLS tests: the hospital CA, the box's certificate and a
modality's from it, a stranger's CA and a certificate from that one; written as PEM files
(`NAME.pem` certificate, `NAME.key` unencrypted PKCS#8 key)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def issue(subject: str, key, issuer: str, issuer_key, ca: bool = False,
          days: int = 30) -> x509.Certificate:
    """A certificate for `subject` (common name) signed by `issuer_key`, valid from yesterday
    for `days` days (negative: expired)."""
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    start = min(now - DAY, now + days * DAY - DAY)
    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(now + days * DAY)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def write_pair(directory: Path, stem: str, certificate: x509.Certificate, key) -> None:
    (directory / f"{stem}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def make_pki(directory: Path) -> Path:
    """ca (Hospital CA), box (edgebox) and modality (CT1) from it, other-ca (Other CA) and
    stranger (CT9) from that one, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = {n: ec.generate_private_key(ec.SECP256R1())
            for n in ("ca", "box", "modality", "other-ca", "stranger")}
    ca = issue("Hospital CA", keys["ca"], "Hospital CA", keys["ca"], ca=True)
    other = issue("Other CA", keys["other-ca"], "Other CA", keys["other-ca"], ca=True)
    write_pair(directory, "ca", ca, keys["ca"])
    write_pair(directory, "box", issue("edgebox", keys["box"], "Hospital CA", keys["ca"]),
               keys["box"])
    write_pair(directory, "modality",
               issue("CT1", keys["modality"], "Hospital CA", keys["ca"]), keys["modality"])
    write_pair(directory, "stranger",
               issue("CT9", keys["stranger"], "Other CA", keys["other-ca"]), keys["stranger"])
    write_pair(directory, "other-ca", other, keys["other-ca"])
    return directory


def reissue(directory: Path, stem: str, subject: str, ca: str, days: int = 30) -> None:
    """A new key and certificate `stem` for `subject` from the CA files `ca`.pem/.key."""
    ca_certificate = x509.load_pem_x509_certificate((directory / f"{ca}.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / f"{ca}.key").read_bytes(), None)
    issuer = ca_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    key = ec.generate_private_key(ec.SECP256R1())
    write_pair(directory, stem, issue(subject, key, issuer, ca_key, days=days), key)
