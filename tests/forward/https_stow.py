"""A DICOMweb server over HTTPS on 127.0.0.1 for the tests of `tls_verify` and
`ca_certificates`: QIDO-RS `GET .../studies` answers an empty list, STOW-RS `POST .../studies`
stores every instance (answered with a ReferencedSOPSequence) and keeps the bytes it got. Its
certificate (for IP 127.0.0.1) is issued by a private CA made by tests/pki.py."""

from __future__ import annotations

import http.server
import io
import json
import ssl
import threading
from pathlib import Path

from pydicom import dcmread

from tests.forward.test_stow_stub import parts_of, uid_item
from tests.pki import issue_server, make_pki


class HttpsDicomWeb:
    """The server; `ca` is the PEM of the CA that issued its certificate, `received` maps each
    stored SOP Instance UID to the bytes that came, `requests` counts the requests answered."""

    def __init__(self, directory: Path):
        make_pki(directory, {}, ca_name="Private Test CA")
        issue_server(directory, "server")
        self.ca = directory / "ca.pem"
        self.received: dict[str, bytes] = {}
        self.requests = 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, document) -> None:
                stub.requests += 1
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.split("?")[0] != "/dicom-web/studies":
                    return self._answer(404, {})
                self._answer(200, [])

            def do_POST(self):
                if self.path != "/dicom-web/studies":
                    return self._answer(404, {})
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stored = []
                for part in parts_of(self.headers["Content-Type"], body):
                    uid = str(dcmread(io.BytesIO(part), stop_before_pixels=True).SOPInstanceUID)
                    stub.received[uid] = part
                    stored.append(uid_item(uid))
                self._answer(200, {"00081199": {"vr": "SQ", "Value": stored}})

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "server.pem", directory / "server.key")
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
