"""Request body limits of the web page, against a real `appliance run`: a body over its route's
limit is answered 413 naming the limit before it is read (or, without a length, as soon as it
passes the limit), a stranger's body to a route that needs a login is never read, nothing is
spooled to a temporary file, and the process's memory does not grow."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from appliance.web.request_limits import DEFAULT_LIMIT, IMPORT_LIMIT
from tests.conftest import free_port
from tests.web.conftest import PASSWORD, read_setup_code
from tests.web.raw_http import request, rss_bytes

MIB = 1024 * 1024
RSS_GROWTH = 20 * MIB
JSON = {"Content-Type": "application/json"}
MULTIPART = {"Content-Type": "multipart/form-data; boundary=xyz"}
#: The start of a well-formed multipart body: a file part whose content follows.
FILE_PART = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
             b"Content-Type: text/csv\r\n\r\n")


def files_under(*roots) -> dict[str, int]:
    return {os.path.join(d, f): os.path.getsize(os.path.join(d, f))
            for root in roots for d, _, names in os.walk(root) for f in names
            if os.path.exists(os.path.join(d, f))}


@pytest.fixture
def box(appliance, tmp_path):
    """A real appliance with its own temporary directory; (process, web port, tmp dir)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    web_port = free_port()
    proc, _, _ = appliance({"web": {"port": web_port}}, env={"TMPDIR": str(tmp)})
    proc.wait_log(f"web page at http://127.0.0.1:{web_port}/")
    return proc, web_port, tmp


def warm_up(port: int) -> None:
    """First requests load templates and parsers: done before memory is measured."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        client.get("/setup")
        client.post("/api/v1/login", json={"password": "warm up password"})
        client.post("/setup", files={"f": ("a.txt", b"a" * 1000)})
        client.post("/login", data={"password": "x"})


def test_a_strangers_oversized_bodies_are_refused_unread(box, tmp_path):
    proc, port, tmp = box
    warm_up(port)
    data_dir = tmp_path / "data"
    files_before = files_under(data_dir)
    rss_before = rss_bytes(proc.pid)

    # 200 MiB announced as JSON to the login: 413 before a byte is read.
    login = request(port, "POST", "/api/v1/login", JSON, content_length=200 * MIB)
    assert login.status == 413, login
    assert login.sent == 0
    assert "at most 64 KiB" in json.loads(login.body)["detail"]
    # The same without a length (chunked): refused once it passes the limit.
    chunked = request(port, "POST", "/api/v1/login", JSON, max_bytes=8 * MIB)
    assert chunked.status == 413, chunked
    assert "64 KiB" in chunked.text
    assert chunked.sent < 4 * MIB
    # 400 MiB multipart to the login and setup forms: nothing spooled, 413 with the limit.
    for path in ("/login", "/setup"):
        form = request(port, "POST", path, MULTIPART, content_length=400 * MIB,
                       prefix=FILE_PART)
        assert form.status == 413, (path, form)
        assert "64 KiB" in form.text and form.sent == 0
        streamed = request(port, "POST", path, MULTIPART, max_bytes=8 * MIB,
                           prefix=FILE_PART)
        assert streamed.status == 413, (path, streamed)
        assert streamed.sent < 4 * MIB
    # A route that needs a login: a stranger's body is not read at all.
    refused = request(port, "POST", "/api/v1/worklist/import", JSON, content_length=300 * MIB)
    assert refused.status == 401 and refused.sent == 0, refused
    assert "not read" in refused.text
    page = request(port, "POST", "/worklist/import", MULTIPART, max_bytes=8 * MIB,
                   prefix=FILE_PART)
    assert page.status == 303 and page.headers["location"] == "/login", page
    assert page.sent < 4 * MIB

    assert rss_bytes(proc.pid) - rss_before < RSS_GROWTH
    assert files_under(tmp) == {}  # nothing spooled to the process's temporary directory
    new = {f: size for f, size in files_under(data_dir).items() if f not in files_before}
    assert not {f: size for f, size in new.items() if size > DEFAULT_LIMIT}, new
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200


def test_a_logged_in_import_has_its_stated_limit(box, tmp_path):
    proc, port, tmp = box
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post("/api/v1/setup", json={
            "password": PASSWORD, "setup_code": read_setup_code(tmp_path / "data")}
        ).json()["csrf_token"]
        cookie = client.cookies["appliance_session"]
        small = client.post("/api/v1/worklist/import", headers={"X-CSRF-Token": token},
                            json={"format": "csv", "data": "PatientName,PatientID\n"})
        assert small.status_code != 413
    warm_up(port)
    rss_before = rss_bytes(proc.pid)
    headers = {**JSON, "Cookie": f"appliance_session={cookie}", "X-CSRF-Token": token}
    announced = request(port, "POST", "/api/v1/worklist/import", headers,
                        content_length=300 * MIB)
    assert announced.status == 413 and announced.sent == 0, announced
    assert "at most 4 MiB" in announced.text
    streamed = request(port, "POST", "/api/v1/worklist/import", headers,
                       max_bytes=IMPORT_LIMIT + 4 * MIB, timeout=30)
    assert streamed.status == 413, streamed
    assert "4 MiB" in streamed.text
    assert rss_bytes(proc.pid) - rss_before < RSS_GROWTH
    assert files_under(tmp) == {}


def test_each_route_has_its_limit(logged_in):
    setup, token = logged_in
    csrf = {"X-CSRF-Token": token}
    big_change = setup.client.patch("/api/v1/config", headers=csrf, json={
        "changes": {"device.name": "x" * DEFAULT_LIMIT}})
    assert big_change.status_code == 413
    assert "at most 64 KiB" in big_change.json()["detail"]
    assert "x" * 100 not in setup.config_path.read_text()  # nothing refused was written
    # A configuration restore may be larger than a form, up to the file's own limit.
    restore = setup.client.post("/api/v1/config/restore", headers=csrf, json={
        "toml": "# " + "x" * (512 * 1024) + "\n[device]\nname = \"BIG\"\n"})
    assert restore.status_code != 413
    too_big = setup.client.post("/api/v1/config/restore", headers=csrf, json={
        "toml": "x" * (2 * MIB)})
    assert too_big.status_code == 413 and "1.1 MiB" in too_big.json()["detail"]
    # Pages answer with a page naming the limit.
    page = setup.client.post("/config/dicom", data={"csrf_token": "x", "form": "dicom",
                                                    "ae_title": "A" * DEFAULT_LIMIT})
    assert page.status_code == 413 and "64 KiB" in page.text
