"""The box's DICOM TLS certificate on the web page: what the Configuration → dicom page shows of
it, and the upload of a new certificate and key.

An upload is checked whole before anything is written (`tls_files.check_tls_material`, against
the configured CA bundle when there is one): each refusal names the upload and the reason, and
nothing changes. A certificate uploaded without a key is paired with the key `appliance tls
create-csr` left at `tls_files.request_key_path()`, if it is that certificate's. Then the files
are written atomically to `<data_dir>/dicom/tls/` (the key 0600), `[dicom.tls] certificate` and
`private_key` are set to them through the configuration editor (validated and written like any
form), and the appliance reloads even when the paths were already those, so the DICOM listener
takes the new files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config import editor, loader
from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError, ConfigError
from appliance.dicom import tls_files
from appliance.dicom.tls_files import PemData, TlsFileError
from appliance.system.atomic_file import write_atomically

log = logging.getLogger(__name__)

#: The largest certificate (with its chain) or key file accepted.
MAX_PEM_BYTES = 64 * 1024
#: The upload request: both files and the form around them.
UPLOAD_LIMIT = 3 * MAX_PEM_BYTES


class UploadRefused(ApplianceError, ValueError):
    """An upload that is not installed; nothing was written."""


@dataclass(frozen=True)
class Upload:
    """One uploaded file: which field it came in ("certificate" or "private key"), the name
    the browser gave it, its bytes."""

    field: str
    filename: str
    data: bytes

    @property
    def label(self) -> str:
        return f"uploaded {self.field}" + (f" {self.filename}" if self.filename else "")


def checked_size(field: str, filename: str, data: bytes) -> Upload:
    """`data` read with one byte to spare: refused when over MAX_PEM_BYTES."""
    upload = Upload(field, filename, data)
    if len(data) > MAX_PEM_BYTES:
        raise UploadRefused(f"refused, nothing changed: {upload.label}: larger than "
                            f"{MAX_PEM_BYTES // 1024} KiB; a PEM certificate or key is a few "
                            "KiB")
    return upload


def card(config: ApplianceConfig) -> dict[str, Any]:
    """What the page shows: the certificate named by `[dicom.tls]`, read now (a page view, not
    every request), its CA bundle's subjects, and the listener's setting."""
    tls = config.dicom.tls
    found = tls_files.survey(tls.certificate, tls.ca_certificates)
    info = found.info
    return {
        "enabled": tls.enabled, "port": tls.port, "certificate": tls.certificate,
        "private_key": tls.private_key, "error": found.error,
        "subject": info.subject if info else "", "issuer": info.issuer if info else "",
        "not_before": f"{info.not_before:%Y-%m-%d %H:%M} UTC" if info else "",
        "not_after": f"{info.not_after:%Y-%m-%d %H:%M} UTC" if info else "",
        "days_left": info.days_left() if info else None,
        "expiry": info.expiry() if info else "", "warning": info.warning() if info else "",
        "ca_certificates": tls.ca_certificates, "ca_subjects": list(found.ca_subjects),
        "ca_error": found.ca_error, "max_kib": MAX_PEM_BYTES // 1024,
        "request_key": str(tls_files.request_key_path(config.device.data_dir)),
    }


def install(config: ApplianceConfig, config_path: Path, certificate: Upload,
            private_key: Upload | None) -> tuple[ApplianceConfig, list[str]]:
    """Check, write and configure the uploaded pair. Returns the configuration to apply (the
    file's, changed or not) and the keys changed; UploadRefused (nothing written) otherwise."""
    if not certificate.data.strip():
        raise UploadRefused("choose the certificate file (PEM) to upload")
    # The file must take a change before anything is written; its settings are the ones
    # changed (the running ones only while there is no file yet).
    on_file = config
    if config_path.exists():
        try:
            on_file = loader.load_file(config_path)
        except ConfigError as exc:
            raise UploadRefused("the configuration file is broken, nothing was written: "
                                + "; ".join(exc.problems)) from None
    tls, data_dir = on_file.dicom.tls, on_file.device.data_dir
    if private_key is None or not private_key.data.strip():
        key = _request_key(data_dir)
    else:
        key = PemData(private_key.label, private_key.data)
    try:
        info = tls_files.check_tls_material(PemData(certificate.label, certificate.data), key,
                                            tls.ca_certificates or None)
    except TlsFileError as exc:
        raise UploadRefused(f"refused, nothing changed: {exc}") from None
    cert_path = tls_files.certificate_path(data_dir)
    key_path = tls_files.private_key_path(data_dir)
    write_atomically(key_path, key.data, mode=0o600)
    write_atomically(cert_path, certificate.data, mode=0o644)
    log.warning("DICOM TLS certificate %s (until %s) and its key installed from the web page "
                "as %s and %s", info.subject, f"{info.not_after:%Y-%m-%d}", cert_path, key_path)
    wanted = {"dicom.tls.certificate": str(cert_path), "dicom.tls.private_key": str(key_path)}
    current = {"dicom.tls.certificate": tls.certificate,
               "dicom.tls.private_key": tls.private_key}
    changes = {k: v for k, v in wanted.items() if current[k] != v}
    if changes:
        try:
            return editor.set_values(config_path, changes), list(changes)
        except ConfigError as exc:
            raise UploadRefused("the files were written but the configuration refused them: "
                                + "; ".join(exc.problems)) from None
    # Same paths, new content: the file is unchanged, yet the listener must take the new pair.
    return on_file, []


def _request_key(data_dir: str) -> PemData:
    path = tls_files.request_key_path(data_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UploadRefused(f"no private key uploaded, and no key from `appliance tls "
                            f"create-csr` at {path}: upload the certificate's key") from None
    except OSError as exc:
        raise UploadRefused(f"no private key uploaded, and the key from `appliance tls "
                            f"create-csr` cannot be read ({path}: {exc.strerror or exc})") \
            from None
    return PemData(str(path), data)
