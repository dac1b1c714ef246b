"""The key material of DICOM TLS (`[dicom.tls]`): the box's certificate, its private key and the
bundle of CAs whose client certificates are accepted, checked before anything listens on them.

Every problem is told with the file and the reason a technician can act on: missing, not
readable, not PEM, not a certificate or key, expired (or not yet valid), the key not the
certificate's, an empty CA bundle. `describe()` gives what the web page shows of a certificate
(subject, issuer, expiry). `request_key_path()` and `request_csr_path()` are where
`appliance tls create-csr` puts a new key and its signing request by default (the web page's
certificate upload looks for the key there too).

`cryptography` (~2 MB) is imported by the functions that read key material, so a box without
DICOM TLS that nobody asks about certificates never loads it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.core.errors import ApplianceError

if TYPE_CHECKING:
    from cryptography import x509

#: A certificate this close to its end is reported (web page, LED, /metrics).
EXPIRY_WARNING = datetime.timedelta(days=30)
#: The private keys `appliance tls create-csr` makes (dicom.tls_request), by --key-type.
KEY_TYPES = {"rsa": "RSA 2048", "ec": "EC P-256"}


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


def tls_dir(data_dir: str | Path) -> Path:
    """Where the box keeps the DICOM TLS key material it writes itself."""
    return Path(data_dir).absolute() / "dicom" / "tls"


def certificate_path(data_dir: str | Path) -> Path:
    """The certificate uploaded on the web page."""
    return tls_dir(data_dir) / "certificate.pem"


def private_key_path(data_dir: str | Path) -> Path:
    """The private key uploaded with it (or taken from `request_key_path`), mode 0600."""
    return tls_dir(data_dir) / "private_key.pem"


def request_key_path(data_dir: str | Path) -> Path:
    """The private key of the pending certificate request (`appliance tls create-csr`),
    mode 0600; the web page's upload takes it when no key is uploaded."""
    return tls_dir(data_dir) / "request-key.pem"


def request_csr_path(data_dir: str | Path) -> Path:
    """The certificate signing request for the hospital's CA, beside its key."""
    return tls_dir(data_dir) / "request.csr"


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    def expires_within(self, span: datetime.timedelta,
                       now: datetime.datetime | None = None) -> bool:
        return self.not_after - (now or _now()) <= span

    def seconds_left(self, now: datetime.datetime | None = None) -> float:
        """Seconds until notAfter (negative once expired)."""
        return (self.not_after - (now or _now())).total_seconds()

    def days_left(self, now: datetime.datetime | None = None) -> int:
        """Whole days until notAfter (negative once expired)."""
        return (self.not_after - (now or _now())).days

    def expiry(self, now: datetime.datetime | None = None) -> str:
        """"ok", "expiring" (within EXPIRY_WARNING) or "expired"."""
        now = now or _now()
        if now > self.not_after:
            return "expired"
        return "expiring" if self.expires_within(EXPIRY_WARNING, now) else "ok"

    def warning(self, now: datetime.datetime | None = None) -> str:
        """The sentence the health picture, the LEDs' reason and the web page give; "" while
        the certificate is good for more than EXPIRY_WARNING."""
        now = now or _now()
        state = self.expiry(now)
        if state == "expired":
            return f"DICOM TLS certificate expired on {self.not_after:%Y-%m-%d}"
        if state == "expiring":
            days = self.days_left(now)
            when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            return f"DICOM TLS certificate expires {when} ({self.not_after:%Y-%m-%d})"
        return ""


@dataclass(frozen=True)
class PemData:
    """Key material not (yet) in its file: `label` names it in refusals (e.g. "uploaded
    certificate box.pem")."""

    label: str
    data: bytes


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _read(path: str | Path, what: str) -> PemData:
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
    return _pem(PemData(str(path), data), what)


def _pem(material: PemData, what: str) -> PemData:
    if b"-----BEGIN" not in material.data:
        raise TlsFileError(material.label, f"not a PEM file (no -----BEGIN line): a {what} is "
                                           "expected")
    return material


def _parse_certificates(material: PemData) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(material.data)
    except ValueError as exc:
        raise TlsFileError(material.label, f"no readable certificate in it ({exc})") from None
    if not certificates:
        raise TlsFileError(material.label, "holds no certificate")
    return certificates


def _certificates(path: str | Path, what: str) -> list[x509.Certificate]:
    return _parse_certificates(_read(path, what))


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
    material = _read(certificate, "certificate")
    _box_certificate(material, now)  # a bad certificate is named before the key is read
    return check_tls_material(material, _read(private_key, "private key"), ca_certificates,
                              now)


def _box_certificate(material: PemData, now: datetime.datetime) -> x509.Certificate:
    cert = _parse_certificates(material)[0]
    _check_dates(material.label, describe(cert), now)
    return cert


def check_tls_material(certificate: PemData, private_key: PemData,
                       ca_certificates: str | Path | None,
                       now: datetime.datetime | None = None) -> CertificateInfo:
    """`check_tls_files` for key material held in memory (a web upload, before anything is
    written): refusals name each by its label."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    now = now or _now()
    cert = _box_certificate(_pem(certificate, "certificate"), now)
    info = describe(cert)
    _pem(private_key, "private key")
    try:
        key = serialization.load_pem_private_key(private_key.data, password=None)
    except TypeError:
        raise TlsFileError(private_key.label, "the private key is encrypted with a password: "
                                              "the box needs it unencrypted (readable only by "
                                              "the appliance user)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TlsFileError(private_key.label, f"not a readable private key ({exc})") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != \
            cert.public_key().public_bytes(encoding, public):
        raise TlsFileError(private_key.label, f"this key does not belong to the certificate "
                                              f"in {certificate.label} ({info.subject})")
    if ca_certificates is not None:
        for ca in _certificates(ca_certificates, "CA certificate"):
            ca_info = describe(ca)
            if now > ca_info.not_after:
                raise TlsFileError(ca_certificates, f"the CA certificate {ca_info.subject} "
                                                    f"expired on {ca_info.not_after:%Y-%m-%d}")
    return info


@dataclass(frozen=True)
class TlsSurvey:
    """What the configuration's TLS files hold now, read without raising: `certificate` ""
    means none is configured; `error` (the file and the reason) when it cannot be read. An
    expired certificate is still described (its `info.expiry()` says so)."""

    certificate: str
    info: CertificateInfo | None = None
    error: str = ""
    ca_certificates: str = ""
    ca_subjects: tuple[str, ...] = ()
    ca_error: str = ""


def survey(certificate: str | Path, ca_certificates: str | Path = "") -> TlsSurvey:
    info, error = None, ""
    if str(certificate):
        try:
            info = describe(_certificates(certificate, "certificate")[0])
        except TlsFileError as exc:
            error = str(exc)
    subjects: tuple[str, ...] = ()
    ca_error = ""
    if str(ca_certificates):
        try:
            subjects = tuple(describe(ca).subject
                             for ca in _certificates(ca_certificates, "CA certificate"))
        except TlsFileError as exc:
            ca_error = str(exc)
    return TlsSurvey(str(certificate), info, error, str(ca_certificates), subjects, ca_error)


def check_ca_certificates(path: str | Path,
                          now: datetime.datetime | None = None) -> list[CertificateInfo]:
    """The CAs of a PEM bundle (such as a DICOMweb peer's `ca_certificates`) as described;
    TlsFileError when the file is missing, unreadable, not PEM, holds no certificate or only
    expired ones."""
    now = now or _now()
    found = [describe(ca) for ca in _certificates(path, "CA certificate")]
    if all(now > info.not_after for info in found):
        raise TlsFileError(path, f"every CA certificate in it has expired (the last on "
                                 f"{max(i.not_after for i in found):%Y-%m-%d})")
    return found
