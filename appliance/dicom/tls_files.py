"""The key material of DICOM TLS (`[dicom.tls]`): the box's certificate, its private key and the
bundle of CAs whose client certificates are accepted, checked before anything listens on them.

Every problem is told with the file and the reason a technician can act on: missing, not
readable, not PEM, not a certificate or key, expired (or not yet valid), the key not the
certificate's, an empty CA bundle. `describe()` gives what the web page shows of a certificate
(subject, issuer, expiry). `request_key_path()` and `request_csr_path()` are where
`appliance tls create-csr` puts a new key and its signing request by default (the web page's
certificate upload looks for the key there too).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from appliance.errors import ApplianceError

#: A certificate this close to its end is reported (web page, LED, /metrics).
EXPIRY_WARNING = datetime.timedelta(days=30)


def request_key_path(data_dir: str | Path) -> Path:
    """The private key of the pending certificate request, in the data directory."""
    return Path(data_dir).absolute() / "dicom" / "tls" / "request-key.pem"


def request_csr_path(data_dir: str | Path) -> Path:
    """The certificate signing request for the hospital's CA, beside its key."""
    return Path(data_dir).absolute() / "dicom" / "tls" / "request.csr"


class TlsFileError(ApplianceError, ValueError):
    """A TLS file cannot be used: `path` and `reason`."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def file_identities(*paths: str | Path) -> tuple:
    """(device, inode, mtime, size) of each path, None for a missing one: changes when a file
    is replaced (written atomically) or rewritten, so settings naming the same paths can
    still tell new files from the ones in use."""
    found = []
    for path in paths:
        try:
            st = os.stat(path) if str(path) else None
        except OSError:
            st = None
        found.append(None if st is None else (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(found)


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    def expires_within(self, span: datetime.timedelta,
                       now: datetime.datetime | None = None) -> bool:
        return self.not_after - (now or _now()) <= span


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _read(path: str | Path, what: str) -> bytes:
    file = Path(path)
    if not str(path):
        raise TlsFileError(path, f"no {what} file configured")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise TlsFileError(path, f"{what} file does not exist") from None
    except IsADirectoryError:
        raise TlsFileError(path, f"is a directory, not a {what} file") from None
    except OSError as exc:
        raise TlsFileError(path, f"cannot read the {what} file: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise TlsFileError(path, f"not a PEM file (no -----BEGIN line): a {what} is expected")
    return data


def _certificates(path: str | Path, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsFileError(path, f"no readable certificate in it ({exc})") from None
    if not certificates:
        raise TlsFileError(path, "holds no certificate")
    return certificates


def describe(certificate: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(certificate.subject.rfc4514_string(),
                           certificate.issuer.rfc4514_string(),
                           certificate.not_valid_before_utc, certificate.not_valid_after_utc)


def _check_dates(path: str | Path, info: CertificateInfo, now: datetime.datetime) -> None:
    if now > info.not_after:
        raise TlsFileError(path, f"the certificate expired on {info.not_after:%Y-%m-%d} "
                                 f"({info.subject})")
    if now < info.not_before:
        raise TlsFileError(path, f"the certificate is not valid before "
                                 f"{info.not_before:%Y-%m-%d} ({info.subject}): check the "
                                 "box's clock")


def check_tls_files(certificate: str | Path, private_key: str | Path,
                    ca_certificates: str | Path | None,
                    now: datetime.datetime | None = None) -> CertificateInfo:
    """The box's certificate (the first in `certificate`, a chain may follow) as described,
    once every file is usable; TlsFileError otherwise. `ca_certificates` may be None when no
    client certificate is asked for."""
    now = now or _now()
    cert = _certificates(certificate, "certificate")[0]
    info = describe(cert)
    _check_dates(certificate, info, now)
    key_data = _read(private_key, "private key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise TlsFileError(private_key, "the private key is encrypted with a password: the "
                                        "box needs it unencrypted (readable only by the "
                                        "appliance user)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TlsFileError(private_key, f"not a readable private key ({exc})") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != \
            cert.public_key().public_bytes(encoding, public):
        raise TlsFileError(private_key, f"this key does not belong to the certificate in "
                                        f"{certificate} ({info.subject})")
    if ca_certificates is not None:
        for ca in _certificates(ca_certificates, "CA certificate"):
            ca_info = describe(ca)
            if now > ca_info.not_after:
                raise TlsFileError(ca_certificates, f"the CA certificate {ca_info.subject} "
                                                    f"expired on {ca_info.not_after:%Y-%m-%d}")
    return info
