"""HTTP to a DICOMweb peer (`[[peers]]` with `protocol = "dicomweb"`): the session with its
authentication and certificate checks, the reasons a request failed in one sentence, and the
QIDO-RS check behind `appliance echo NAME`, the web page's "Test" button and the front panel.

`requests` is imported only when a DICOMweb peer is used, so a box without one does not carry
it in memory (`appliance run` even blocks it, see `cli.cmd_run`: `import_requests` lifts that).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from appliance.config.schema import PeerConfig
from appliance.dicom.verification import EchoResult
from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
_import_lock = threading.Lock()


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


def session(peer: PeerConfig):
    """A requests.Session for the peer: its auth, and its certificate checks for https."""
    requests = import_requests()

    http = requests.Session()
    http.trust_env = False  # no proxy or netrc from the environment: only what is configured
    if peer.auth == "basic":
        http.auth = (peer.username, peer.password.get_secret_value())
    http.headers.update(authorization(peer))
    if not peer.tls_verify:
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
