"""The box as a TLS client of its peers (`[[peers]] tls = true`): forwarding, `appliance echo`,
the upstream worklist and the DICOM printer open their associations through the `ssl` context
made here from `[dicom.tls]`.

The context follows BCP 195 as the engine's listener does: TLS 1.2 or newer, forward-secret
AEAD cipher suites for TLS 1.2; the peer's certificate must chain to one of
`ca_certificates`; the box's own certificate is presented as the client certificate. The
peer's host name is not compared with its certificate (as DCMTK's and Orthanc's TLS clients
do): peers are often configured by IP address, and the CA bundle is the hospital's own.
"""

from __future__ import annotations

import functools
import ssl

from appliance.dicom.config import DicomTlsConfig
from appliance.dicom.tls_files import TlsFileError, check_tls_files, file_identities

#: TLS 1.2 suites of BCP 195 (ECDHE/DHE with AES-GCM or ChaCha20); TLS 1.3's are all allowed.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def client_context(tls: DicomTlsConfig) -> ssl.SSLContext:
    """The context for associations to TLS peers; TlsFileError (the file and the reason)
    when `[dicom.tls]` certificate, private_key or ca_certificates cannot be used. Made once
    per set of files (and again when a file is replaced)."""
    return _context(tls.certificate, tls.private_key, tls.ca_certificates,
                    file_identities(tls.certificate, tls.private_key, tls.ca_certificates))


@functools.lru_cache(maxsize=4)
def _context(certificate: str, private_key: str, ca_certificates: str,
             identities: tuple) -> ssl.SSLContext:
    if not ca_certificates:
        raise TlsFileError("[dicom.tls] ca_certificates",
                           "not set: a TLS peer's certificate cannot be verified without it")
    check_tls_files(certificate, private_key, ca_certificates)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=ca_certificates)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(ca_certificates, f"cannot load the CA bundle: {exc}") from exc
    try:
        context.load_cert_chain(certificate, private_key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(certificate, f"cannot load with its key {private_key}: "
                           f"{exc}") from exc
    return context


def tls_args(tls: DicomTlsConfig | None, host: str) -> tuple[ssl.SSLContext, str] | None:
    """pynetdicom's `associate(..., tls_args=...)` for a peer: None for a plain one (`tls`
    None), else the context and the host (for SNI). Raises TlsFileError."""
    if tls is None:
        return None
    return client_context(tls), host
