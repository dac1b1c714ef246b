"""HTTP to a DICOMweb peer (`[[peers]]` with `protocol = "dicomweb"`): the session with its
authentication and certificate checks, the reasons a request failed in one sentence, and the
QIDO-RS check behind `appliance echo NAME`, the web page's "Test" button and the front panel.

Before a request the peer's `ca_certificates` and `token_file` are read (an unreadable one
stops the request with the key and the reason, the same check `appliance config check` makes,
`peer_files`); with `tls_verify = false` a warning is logged once per peer and process.

`requests` is imported only when a DICOMweb peer is used, so a box without one does not carry
it in memory (`appliance run` even blocks it, see `cli.cmd_run`: `import_requests` lifts that).
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
import time
from pathlib import Path

from appliance.core.errors import ApplianceError
from appliance.dicom.echo_result import EchoResult
from appliance.dicom.peer_config import PeerConfig

log = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
_import_lock = threading.Lock()
# OpenSSL's verify codes for a certificate whose issuer is not among the trusted CAs.
UNKNOWN_ISSUER = {2, 18, 19, 20, 21}
_unverified_warned: set[tuple[str, str]] = set()  # (name, url) of peers warned about


def import_requests():
    """The `requests` module, imported now. `appliance run` marks it as not importable
    (sys.modules["requests"] = None) to keep it out of a box that never needs it; a DICOMweb
    peer does, so the mark is lifted here."""
    with _import_lock:
        if "requests" in sys.modules and sys.modules["requests"] is None:
            del sys.modules["requests"]
        import requests
    return requests


class DicomWebUnreachable(ApplianceError, ConnectionError):
    """No usable answer from the DICOMweb peer at all (connection refused, TLS, 401/403, a
    server error): the reason in one sentence."""


def endpoint(peer: PeerConfig, resource: str) -> str:
    """`url` joined with a resource path such as "studies"."""
    return peer.url.rstrip("/") + "/" + resource.lstrip("/")


def authorization(peer: PeerConfig) -> dict[str, str]:
    """The Authorization header for the peer's `auth` (DicomWebUnreachable when the token file
    cannot be read)."""
    if peer.auth == "bearer":
        token = peer.token.get_secret_value()
        if peer.token_file:
            try:
                token = Path(peer.token_file).read_text().strip()
            except OSError as exc:
                raise DicomWebUnreachable(f"cannot read token_file {peer.token_file}: "
                                          f"{exc.strerror or exc}") from None
            if not token:
                raise DicomWebUnreachable(f"token_file {peer.token_file} is empty")
        return {"Authorization": f"Bearer {token}"}
    return {}


def file_problem(path: str) -> str | None:
    """Why the file `path` cannot be read by the box, or None when it can."""
    try:
        with open(path, "rb") as file:
            file.read(1)
    except FileNotFoundError:
        return f"{path}: file does not exist"
    except IsADirectoryError:
        return f"{path}: is a directory, not a file"
    except OSError as exc:
        return f"{path}: cannot read it: {exc.strerror or exc}"
    return None


def peer_files(peer: PeerConfig) -> list[tuple[str, str]]:
    """(key, reason) for each file the DICOMweb peer names that cannot be read: its
    `ca_certificates` (which must also hold a PEM certificate) and `token_file`."""
    from appliance.dicom.tls_files import TlsFileError, check_ca_certificates

    problems = []
    if peer.ca_certificates and peer.tls_verify:
        try:
            check_ca_certificates(peer.ca_certificates)
        except TlsFileError as exc:
            problems.append(("ca_certificates", str(exc)))
    if peer.token_file and peer.auth == "bearer":
        reason = file_problem(peer.token_file)
        if reason:
            problems.append(("token_file", reason))
    return problems


def _warn_unverified(peer: PeerConfig) -> None:
    """Log once per peer (and process) that its certificate is not checked; urllib3's own
    InsecureRequestWarning at every request is turned off (the log says it instead)."""
    with _import_lock:
        if (peer.name, peer.url) in _unverified_warned:
            return
        _unverified_warned.add((peer.name, peer.url))
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    log.warning("DICOMweb peer %s: tls_verify = false: the server's HTTPS certificate is not "
                "checked, anyone on the path can read and alter what is sent", target(peer))


def session(peer: PeerConfig):
    """A requests.Session for the peer: its auth, and its certificate checks for https
    (DicomWebUnreachable when `ca_certificates` cannot be read)."""
    requests = import_requests()

    if peer.ca_certificates and peer.tls_verify:
        reason = file_problem(peer.ca_certificates)
        if reason:
            raise DicomWebUnreachable(f"ca_certificates {reason}")
    http = requests.Session()
    http.trust_env = False  # no proxy or netrc from the environment: only what is configured
    if peer.auth == "basic":
        http.auth = (peer.username, peer.password.get_secret_value())
    http.headers.update(authorization(peer))
    if not peer.tls_verify:
        if peer.url.startswith("https:"):
            _warn_unverified(peer)
        http.verify = False
    elif peer.ca_certificates:
        http.verify = peer.ca_certificates
    return http


def target(peer: PeerConfig) -> str:
    return f"{peer.name} ({peer.url})"


def refused_reason(status: int, body: str) -> str | None:
    """The sentence for an HTTP status that stops the whole destination, or None."""
    detail = " ".join(body.split())[:200]
    detail = f": {detail}" if detail else ""
    if status == 401:
        return f"HTTP 401: the archive refused our credentials (check auth, username, " \
               f"password, token){detail}"
    if status == 403:
        return f"HTTP 403: the archive does not let these credentials do this{detail}"
    if status == 404:
        return f"HTTP 404: no DICOMweb service at this url{detail}"
    if status >= 500:
        return f"HTTP {status}: the archive had a server error{detail}"
    return None


def transport_reason(exc: Exception) -> str:
    """One sentence for a requests exception (connection refused, TLS, timeout)."""
    requests = import_requests()
    if isinstance(exc, requests.exceptions.SSLError):
        unverified = _cause(exc, ssl.SSLCertVerificationError)
        if unverified is not None:
            hint = ": give the CA that issued it in ca_certificates" \
                if unverified.verify_code in UNKNOWN_ISSUER else ""
            return (f"TLS: the server's certificate could not be verified "
                    f"({unverified.verify_message or unverified.reason}){hint}")
        return f"TLS: {_innermost(exc)}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "no connection within the timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the timeout"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = _innermost(exc)
        if "refused" in text.lower():
            return "connection refused"
        return f"cannot connect: {text}"
    return str(exc)


def _cause(exc: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of type `kind` in the chain of causes of `exc` (or `exc`)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, kind):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _innermost(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


def qido_echo(peer: PeerConfig, timeout: float = 10.0) -> EchoResult:
    """Check a DICOMweb peer with one QIDO-RS query (GET studies?limit=1); never raises for
    network trouble."""
    requests = import_requests()
    where = target(peer)
    started = time.monotonic()
    try:
        with session(peer) as http:
            rsp = http.get(endpoint(peer, "studies"), params={"limit": "1"},
                           headers={"Accept": DICOM_JSON}, timeout=timeout)
    except DicomWebUnreachable as exc:
        return EchoResult(False, where, reason=str(exc), service="QIDO-RS")
    except requests.exceptions.RequestException as exc:
        return EchoResult(False, where, reason=transport_reason(exc), service="QIDO-RS")
    elapsed = (time.monotonic() - started) * 1000
    if rsp.status_code in (200, 204):
        return EchoResult(True, where, round_trip_ms=elapsed, service="QIDO-RS")
    reason = refused_reason(rsp.status_code, rsp.text) or \
        f"HTTP {rsp.status_code} {rsp.reason}: {' '.join(rsp.text.split())[:200]}"
    return EchoResult(False, where, reason=reason, service="QIDO-RS")
