"""The web page's HTTPS certificate: self-signed, generated on first start, kept in the data
directory (`web/tls/cert.pem`, `web/tls/key.pem`) so browsers can pin it."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)


def certificate_paths(data_dir: str | Path) -> tuple[Path, Path]:
    base = Path(data_dir).absolute() / "web" / "tls"
    return base / "cert.pem", base / "key.pem"


def ensure_certificate(data_dir: str | Path, name: str, addresses: list[str]) -> tuple[Path, Path]:
    """The certificate and key paths; both are created when either is missing."""
    cert_path, key_path = certificate_paths(data_dir)
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DICOM Edge Appliance")])
    alt: list[x509.GeneralName] = [x509.DNSName(name), x509.DNSName("localhost")]
    for address in dict.fromkeys(["127.0.0.1", *addresses]):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            continue
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(cert_path.parent, 0o700)
    write_atomically(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), mode=0o600)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("generated the web page's HTTPS certificate %s (SHA-256 %s)", cert_path,
             cert.fingerprint(hashes.SHA256()).hex(":"))
    return cert_path, key_path
