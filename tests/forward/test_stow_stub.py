"""STOW-RS behaviour no stock archive shows on demand, against real HTTP servers on 127.0.0.1:
a stub STOW-RS server answering 202 with a FailedSOPSequence for chosen instances (each retried
or failed on its own, with the archive's reason, the others delivered; several instances per
request), and a proxy in front of Orthanc that demands a bearer token (a wrong one is refused
and the queue says why; a token_file put right is read at the next request)."""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import io
import threading
import urllib.request

import pytest
from pydicom import dcmread

from tests.forward.conftest import Orthanc, wait_until
from tests.forward.test_forward_orthanc import queue_json, uids
from tests.storage.dicom_files import make_study, storescu

OUT_OF_RESOURCES = 0xA700  # retried
SOP_CLASS_NOT_SUPPORTED = 0x0122  # failed for good


def parts_of(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a multipart/related request body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    assert message.get_content_type() == "multipart/related"
    assert message.get_param("type") == "application/dicom"
    parts = list(message.iter_parts())
    assert all(p.get_content_type() == "application/dicom" for p in parts)
    return [p.get_payload(decode=True) for p in parts]


def uid_item(uid: str, reason: int | None = None) -> dict:
    item = {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
            "00081155": {"vr": "UI", "Value": [uid]}}
    if reason is not None:
        item["00081197"] = {"vr": "US", "Value": [reason]}
    return item


class StubStow:
    """A STOW-RS server: refuses each instance in `refuse` (uid -> FailureReason) the first
    `times` times it comes, stores the rest; records every request's SOP Instance UIDs."""

    def __init__(self, refuse: dict[str, int], times: int = 1):
        self.refuse, self.times = refuse, times
        self.requests: list[list[str]] = []
        self.stored: list[str] = []
        self.refused: dict[str, int] = {}
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                import json
                assert self.path == "/dicom-web/studies"
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sent = [str(dcmread(io.BytesIO(part), stop_before_pixels=True).SOPInstanceUID)
                        for part in parts_of(self.headers["Content-Type"], body)]
                stub.requests.append(sent)
                ok, failed = [], []
                for uid in sent:
                    if uid in stub.refuse and stub.refused.get(uid, 0) < stub.times:
                        stub.refused[uid] = stub.refused.get(uid, 0) + 1
                        failed.append(uid_item(uid, stub.refuse[uid]))
                    else:
                        stub.stored.append(uid)
                        ok.append(uid_item(uid))
                answer = {}
                if ok:
                    answer["00081199"] = {"vr": "SQ", "Value": ok}
                if failed:
                    answer["00081198"] = {"vr": "SQ", "Value": failed}
                data = json.dumps(answer).encode()
                self.send_response(202 if failed and ok else 409 if failed else 200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class BearerProxy:
    """Forwards every request to Orthanc when it carries `Authorization: Bearer <token>`,
    answers 401 otherwise; counts the refusals."""

    def __init__(self, orthanc: Orthanc, token: str):
        self.refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _relay(self):
                if self.headers.get("Authorization") != f"Bearer {token}":
                    proxy.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(
                    f"http://127.0.0.1:{orthanc.http_port}{self.path}", data=body,
                    method=self.command, headers={k: v for k, v in self.headers.items()
                                                  if k in ("Content-Type", "Accept")})
                try:
                    with urllib.request.urlopen(request, timeout=20) as rsp:
                        status, headers, data = rsp.status, rsp.headers, rsp.read()
                except urllib.error.HTTPError as exc:
                    status, headers, data = exc.code, exc.headers, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def destination(**keys) -> dict:
    return {"peer": "pacs", "retry_initial": 0.2, "retry_max": 0.5, "batch_size": 8, **keys}


@pytest.fixture
def study(tmp_path):
    files = make_study(tmp_path / "study", 6)
    return files, uids(files)


def test_partial_failure_is_retried_or_failed_per_instance(appliance, study):
    files, expected = study
    retried, rejected = expected[1], expected[4]
    stub = StubStow({retried: OUT_OF_RESOURCES, rejected: SOP_CLASS_NOT_SUPPORTED})
    try:
        _, port, config = appliance({"peers": [{"name": "pacs", "protocol": "dicomweb",
                                                "url": stub.url}],
                                     "destinations": [destination()]})
        assert storescu(port, files).returncode == 0
        status = wait_until(lambda: (s := queue_json(config)["pacs"])["done"] == 5 and s, 20,
                            what="five delivered")
        assert status["failed"] == 1 and status["pending"] == 0
        # The refused-for-good one is failed with the archive's reason; sent once only.
        [error] = status["instance_errors"]
        assert error["sop_instance_uid"] == rejected
        assert "FailureReason 0x0122" in error["error"] and "SOP Class not supported" in \
            error["error"]
        # The out-of-resources one was sent again on its own and then stored.
        assert stub.refused == {retried: 1, rejected: 1}
        assert sorted(stub.stored) == sorted(u for u in expected if u != rejected)
        assert sum(r.count(retried) for r in stub.requests) == 2
        assert sum(r.count(rejected) for r in stub.requests) == 1
        # Several instances per request: the first request carried more than one.
        assert max(len(r) for r in stub.requests) > 1
        assert sum(len(r) for r in stub.requests) == len(expected) + 1
    finally:
        stub.close()


def test_wrong_bearer_token_refused_then_token_file_put_right(appliance, tmp_path, study):
    files, expected = study
    orthanc = Orthanc(tmp_path / "orthanc", dicomweb=True).start()
    proxy = BearerProxy(orthanc, "good-token")
    token_file = tmp_path / "token"
    token_file.write_text("bad-token\n")
    try:
        peer = {"name": "pacs", "protocol": "dicomweb", "url": proxy.url, "auth": "bearer",
                "token_file": str(token_file)}
        _, port, config = appliance({"peers": [peer], "destinations": [destination()]})
        assert storescu(port, files).returncode == 0
        status = wait_until(lambda: (s := queue_json(config)["pacs"])["last_error"] and s, 15,
                            what="a recorded refusal")
        assert "HTTP 401" in status["last_error"]
        assert status["pending"] == len(files) and status["done"] == 0
        assert proxy.refused >= 1 and orthanc.sop_instance_uids() == []
        token_file.write_text("good-token\n")  # renewed: read at the next request
        wait_until(lambda: queue_json(config)["pacs"]["done"] == len(files), 20,
                   what="all delivered once the token is right")
        assert sorted(orthanc.sop_instance_uids()) == expected
    finally:
        proxy.close()
        orthanc.discard()
