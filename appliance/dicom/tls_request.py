"""A new private key and a certificate signing request (CSR) for the hospital's CA: the first
step to DICOM over TLS with a certificate the hospital trusts (`appliance tls create-csr`).

`request_details()` checks what the technician typed (each bad value named with its option);
`create_request()` makes the key (RSA 2048 or EC P-256), signs the CSR with SHA-256 and writes
both: the key atomically with mode 0600 in a directory of mode 0700, never over an existing key
or request unless asked to. When root runs it, the files and the directories it creates take
the owner of the directory they are made in, so the appliance (its own user) can read its key.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from appliance.core.errors import ApplianceError
from appliance.dicom.tls_files import KEY_TYPES
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

RSA_BITS = 2048
#: X.509's upper bound (RFC 5280) for the common name, organization and unit.
NAME_LENGTH = 64
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


class RequestInputError(ApplianceError, ValueError):
    """A value given for the request is refused: `option`, `value` and `reason`."""

    def __init__(self, option: str, value: str, reason: str):
        super().__init__(f"{option}: {value!r} {reason}")
        self.option, self.value, self.reason = option, value, reason


class RequestWriteError(ApplianceError, RuntimeError):
    """The key or the request cannot be written (or would replace one): `path` and `reason`."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True)
class RequestDetails:
    """What goes into the request: the subject and the subjectAltName entries."""

    common_name: str
    organization: str | None = None
    organizational_unit: str | None = None
    country: str | None = None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()

    def subject(self) -> x509.Name:
        attributes = [(NameOID.COUNTRY_NAME, self.country),
                      (NameOID.ORGANIZATION_NAME, self.organization),
                      (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit),
                      (NameOID.COMMON_NAME, self.common_name)]
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes
                          if value is not None])

    def alt_names(self) -> list[x509.GeneralName]:
        return [*(x509.DNSName(name) for name in self.dns_names),
                *(x509.IPAddress(address) for address in self.ip_addresses)]

    def describe_alt_names(self) -> str:
        return ", ".join([*(f"DNS:{name}" for name in self.dns_names),
                          *(f"IP:{address}" for address in self.ip_addresses)]) or "none"


@dataclass(frozen=True)
class WrittenRequest:
    key_path: Path
    csr_path: Path
    key_type: str
    details: RequestDetails
    csr: x509.CertificateSigningRequest


def is_host_name(name: str, wildcard: bool = False) -> bool:
    """A DNS host name (RFC 1123 labels, 253 characters at most); with `wildcard`, `*.` may
    lead it. An IP address is not a host name."""
    if wildcard and name.startswith("*."):
        name = name[2:]
    if not name or len(name) > 253 or _is_ip(name):
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _name_value(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise RequestInputError(option, value, "is empty")
    if len(value) > NAME_LENGTH:
        raise RequestInputError(option, value, f"is longer than {NAME_LENGTH} characters "
                                               f"({len(value)})")
    return value


def request_details(common_name: str, organization: str | None = None,
                    organizational_unit: str | None = None, country: str | None = None,
                    dns_names: list[str] | tuple[str, ...] = (),
                    ip_addresses: list[str] | tuple[str, ...] = ()) -> RequestDetails:
    """The checked request, RequestInputError for the first bad value. The common name is also
    a subjectAltName (DNS, or IP when it is an address): TLS clients match only those."""
    common_name = _name_value("--common-name", common_name) or ""
    organization = _name_value("--organization", organization)
    organizational_unit = _name_value("--organizational-unit", organizational_unit)
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise RequestInputError("--country", country, "is not a two-letter country code "
                                                          "(ISO 3166, e.g. DE, US)")
        country = country.upper()
    dns: list[str] = []
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in dns_names:
        if not is_host_name(name.rstrip("."), wildcard=True):
            raise RequestInputError("--dns", name, "is not a DNS host name (letters, digits "
                                                   "and hyphens, labels separated by dots)")
        dns.append(name.rstrip(".").lower())
    for text in ip_addresses:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            raise RequestInputError("--ip", text, "is not an IPv4 or IPv6 address") from None
    if _is_ip(common_name):
        addresses.insert(0, ipaddress.ip_address(common_name))
    elif is_host_name(common_name.rstrip(".")):
        dns.insert(0, common_name.rstrip(".").lower())
    return RequestDetails(common_name, organization, organizational_unit, country,
                          tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(addresses)))


def generate_key(key_type: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise RequestInputError("--key-type", key_type, f"is not one of {', '.join(KEY_TYPES)}")


def build_csr(key, details: RequestDetails) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(details.subject())
    alt_names = details.alt_names()
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(key, hashes.SHA256())


def create_request(key_path: str | Path, csr_path: str | Path, details: RequestDetails,
                   key_type: str = "rsa", force: bool = False) -> WrittenRequest:
    """Write a new key to `key_path` and its CSR to `csr_path`. Without `force` nothing is
    written when either file exists (a key is never replaced by surprise)."""
    key_path, csr_path = Path(key_path).absolute(), Path(csr_path).absolute()
    if key_path == csr_path:
        raise RequestInputError("--csr", str(csr_path), "is the same file as --key")
    if key_type not in KEY_TYPES:
        raise RequestInputError("--key-type", key_type, f"is not one of {', '.join(KEY_TYPES)}")
    if not force:
        for path, what, loss in ((key_path, "a private key", " (that key is then lost)"),
                                 (csr_path, "a request", "")):
            if path.exists() or path.is_symlink():
                raise RequestWriteError(path, f"already exists (perhaps {what} waiting for "
                                              "its certificate); nothing written. Give "
                                              f"--force to replace it{loss}")
    _make_directory(key_path.parent, private=True)
    _make_directory(csr_path.parent, private=False)
    key = generate_key(key_type)
    csr = build_csr(key, details)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_existed = key_path.exists()
    _write(key_path, key_pem, 0o600)
    try:
        _write(csr_path, csr.public_bytes(serialization.Encoding.PEM), 0o644)
    except RequestWriteError:
        if not key_existed:  # a key without its request is of no use: leave nothing behind
            key_path.unlink(missing_ok=True)
        raise
    log.info("wrote a %s key %s and its certificate request %s for %s", KEY_TYPES[key_type],
             key_path, csr_path, details.subject().rfc4514_string())
    return WrittenRequest(key_path, csr_path, key_type, details, csr)


def _write(path: Path, data: bytes, mode: int) -> None:
    if path.is_dir():
        raise RequestWriteError(path, "is a directory")
    try:
        write_atomically(path, data, mode=mode)
    except OSError as exc:
        raise RequestWriteError(path, f"cannot write it: {exc.strerror or exc}") from None
    _take_owner_of_directory(path)


def _make_directory(directory: Path, private: bool) -> None:
    """Create `directory` and its missing parents (the last one 0700 when `private`)."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=0o700 if private and candidate == directory else 0o755)
        except FileExistsError:
            pass
        except OSError as exc:
            raise RequestWriteError(candidate, f"cannot create the directory: "
                                               f"{exc.strerror or exc}") from None
        if private and candidate == directory:
            os.chmod(candidate, 0o700)  # whatever the umask
        _take_owner_of_directory(candidate)
    if not directory.is_dir():
        raise RequestWriteError(directory, "is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RequestWriteError(directory, "cannot write in this directory: permission denied")


def _take_owner_of_directory(path: Path) -> None:
    """As root, give `path` the owner of the directory it is in (on the box: the appliance
    user owns /data, and it must read its key)."""
    if os.geteuid() != 0:
        return
    parent = path.parent.stat()
    if parent.st_uid != 0:
        try:
            os.chown(path, parent.st_uid, parent.st_gid)
        except OSError as exc:
            raise RequestWriteError(path, f"cannot give it the owner of its directory: "
                                          f"{exc.strerror or exc}") from None
