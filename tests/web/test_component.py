"""The web page inside `appliance run`: its own component (a failure never stops DICOM),
HTTPS with a certificate made on first start, metrics from real associations, and
`appliance passwd`."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time

import httpx

from appliance.web.passwords import PasswordStore
from tests.conftest import echoscu, free_port
from tests.web.conftest import read_setup_code


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_web_failure_never_stops_dicom_and_is_retried(appliance):
    web_port = free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", web_port))
    blocker.listen(1)
    try:
        proc, port, _ = appliance({"web": {"port": web_port}})
        proc.wait_log(f"web failed: cannot listen on 127.0.0.1:{web_port}")
        assert echoscu(port).returncode == 0  # DICOM answers while the web page is down
    finally:
        blocker.close()
    proc.wait_log(f"web page at http://127.0.0.1:{web_port}/", timeout=20)
    health = httpx.get(f"http://127.0.0.1:{web_port}/api/health", timeout=5).json()
    states = {c["name"]: c["state"] for c in health["components"]}
    assert states["web"] == "running" and states["dicom"] == "running"
    web = next(c for c in health["components"] if c["name"] == "web")
    assert web["failures"] >= 1 or "restarting web" in proc.log()


def test_metrics_count_real_associations(appliance):
    proc, port, config = appliance()
    web_port = int(config.read_text().split("[web]")[1].split("port = ")[1].split()[0])
    assert echoscu(port).returncode == 0
    assert echoscu(port, called="WRONG").returncode != 0
    url = f"http://127.0.0.1:{web_port}/metrics"

    def counted():
        text = httpx.get(url, timeout=5).text
        return ('appliance_associations_total{outcome="released"} 1.0' in text
                and 'appliance_associations_total{outcome="rejected"} 1.0' in text)
    wait_for(counted)
    text = httpx.get(url, timeout=5).text
    assert 'appliance_component_up{component="dicom"} 1.0' in text
    assert "appliance_associations_open 0.0" in text


def test_https_with_a_certificate_generated_on_first_start(appliance, tmp_path):
    web_port = free_port()
    proc, port, config = appliance({"web": {"port": web_port, "https": True}})
    cert = tmp_path / "data" / "web" / "tls" / "cert.pem"
    proc.wait_log(f"web page at https://127.0.0.1:{web_port}/")
    assert cert.is_file()
    assert oct((tmp_path / "data" / "web" / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), base_url=f"https://127.0.0.1:{web_port}",
                      timeout=10) as client:
        assert client.get("/api/health").status_code == 200
        answer = client.post("/api/v1/setup", json={
            "password": "a good password", "setup_code": read_setup_code(tmp_path / "data")})
        assert "secure" in answer.headers["set-cookie"].lower()
    # Plain HTTP is not served on that port.
    try:
        plain = httpx.get(f"http://127.0.0.1:{web_port}/api/health", timeout=5)
        assert plain.status_code == 400 or plain.status_code >= 400
    except httpx.HTTPError:
        pass
    first = cert.read_bytes()
    proc.stop()
    again, _, _ = appliance({"web": {"port": free_port(), "https": True}})
    assert cert.read_bytes() == first  # kept, so browsers that trusted it still do


def run_passwd(config, text):
    return subprocess.run([sys.executable, "-m", "appliance", "passwd", "--stdin", "--config",
                           str(config)], input=text, capture_output=True, text=True, timeout=60)


def test_appliance_passwd_sets_the_scrypt_hash(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "appliance.toml"
    config.write_text(f'[device]\ndata_dir = "{data}"\n')
    short = run_passwd(config, "short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert not (data / "web" / "admin-password").exists()
    done = run_passwd(config, "console password\n")
    assert done.returncode == 0, done.stderr
    stored = data / "web" / "admin-password"
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    assert '"scheme": "scrypt"' in stored.read_text()
    assert "console password" not in stored.read_text()
    store = PasswordStore(stored)
    assert store.verify("console password") and not store.verify("console passwore")


def test_forward_queue_shown_and_held_through_the_web_api(appliance, tmp_path):
    from tests.storage.dicom_files import make_study, storescu

    web_port = free_port()
    _, port, _ = appliance({
        "web": {"port": web_port},
        # A destination that is down: what is stored waits in its queue.
        "peers": [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1",
                   "port": free_port()}],
        "destinations": [{"peer": "pacs", "retry_initial": 60.0}],
    })
    base = f"http://127.0.0.1:{web_port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post("/api/v1/setup", json={
            "password": "queue password", "setup_code": read_setup_code(tmp_path / "data")}
        ).json()["csrf_token"]
        assert storescu(port, make_study(tmp_path / "study", 2)).returncode == 0
        wait_for(lambda: client.get("/api/v1/queue").json()[0]["pending"] == 2)
        held = client.post("/api/v1/queue/pacs/hold", headers={"X-CSRF-Token": token})
        assert held.status_code == 200
        assert client.get("/api/v1/queue").json()[0]["held"] is True
        assert "pacs" in client.get("/queue").text
        assert 'appliance_queue_depth{destination="pacs"} 2.0' in client.get("/metrics").text
        assert client.post("/api/v1/queue/nosuch/hold", headers={"X-CSRF-Token": token}
                           ).status_code == 404
