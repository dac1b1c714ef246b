"""Test PKI for DICOM TLS, shared by the key-material checks and the web page's certificate
upload: a CA, certificates it signs with chosen dates, keys, all written as PEM."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def issue(subject: str, key, issuer_name: str, issuer_key, start: datetime.datetime,
          end: datetime.datetime, ca: bool = False) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(name(subject))
               .issuer_name(name(issuer_name)).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else \
        serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


class HospitalCa:
    """A CA valid for ten years around now; `box()` issues the box's certificate."""

    def __init__(self, subject: str = "Hospital CA"):
        self.subject = subject
        self.key = new_key()
        now = utc_now()
        self.certificate = issue(subject, self.key, subject, self.key, now - 400 * DAY,
                                 now + 3650 * DAY, ca=True)

    def box(self, subject: str = "edgebox.ct-room", days: float = 365.0,
            key=None, start_days_ago: float = 1.0):
        """(certificate PEM, key PEM) valid from `start_days_ago` until `days` from now."""
        key = key or new_key()
        now = utc_now()
        cert = issue(subject, key, self.subject, self.key,
                     now - datetime.timedelta(days=start_days_ago),
                     now + datetime.timedelta(days=days))
        return pem(cert), key_pem(key)
