"""DICOMweb peers over real HTTPS on 127.0.0.1 (tests/forward/https_stow.py, a certificate from
a private CA): with that CA in `ca_certificates` the instances are delivered byte for byte;
without it (`tls_verify` true, the default) they are refused and the queue's last error says
the server's certificate could not be verified; with `tls_verify = false` they are delivered
and the appliance logs once that the certificate is not checked. `appliance echo NAME` gives
the same three answers, and says which file is wrong when `ca_certificates` cannot be read."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.forward.conftest import wait_until
from tests.forward.https_stow import HttpsDicomWeb
from tests.forward.test_forward_orthanc import queue_json, uids
from tests.storage.dicom_files import make_study, storescu

UNVERIFIED = "the server's certificate could not be verified"
WARNING = "tls_verify = false: the server's HTTPS certificate is not checked"


@pytest.fixture
def servers(tmp_path):
    """Three HTTPS DICOMweb servers, each with a certificate from its own private CA."""
    started = {name: HttpsDicomWeb(tmp_path / f"https-{name}")
               for name in ("trusted", "private", "insecure")}
    yield started
    for server in started.values():
        server.close()


def peers(servers) -> list[dict]:
    def peer(name, **keys):
        return {"name": name, "protocol": "dicomweb", "url": servers[name].url, **keys}

    return [peer("trusted", ca_certificates=str(servers["trusted"].ca)),
            peer("private"),  # tls_verify is true by default; its CA is not the system's
            peer("insecure", tls_verify=False)]


def destination(name: str) -> dict:
    return {"peer": name, "retry_initial": 0.2, "retry_max": 0.5, "batch_size": 4}


def echo(config_path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", "echo", "--config",
                           str(config_path), name, "--timeout", "5"], capture_output=True,
                          text=True, cwd=REPO, timeout=30)


def test_https_peer_delivered_with_its_ca_refused_without_unchecked_with_tls_verify_false(
        appliance, servers, tmp_path):
    proc, port, config = appliance({"peers": peers(servers),
                                    "destinations": [destination(n) for n in servers]})
    files = make_study(tmp_path / "study", 6)
    assert storescu(port, files[:3]).returncode == 0
    wait_until(lambda: all(queue_json(config)[n]["done"] == 3 for n in ("trusted", "insecure")),
               20, what="the first three delivered to trusted and insecure")
    assert storescu(port, files[3:]).returncode == 0  # a second request to each
    expected = uids(files)
    status = wait_until(lambda: (s := queue_json(config)) and all(
        s[n]["done"] == 6 for n in ("trusted", "insecure")) and s[
        "private"]["last_error"] and s, 20, what="delivered to two, refused by one")

    data_dir = config.parent / "data"
    for name in ("trusted", "insecure"):
        server = servers[name]
        assert sorted(server.received) == expected and server.requests >= 2, name
        assert status[name]["pending"] == 0 and status[name]["failed"] == 0
        for uid, received in server.received.items():
            [stored] = data_dir.glob(f"instances/*/{uid}.dcm")
            assert received == stored.read_bytes()  # byte for byte, over TLS
    private = status["private"]
    assert UNVERIFIED in private["last_error"], private
    assert "ca_certificates" in private["last_error"]
    assert private["done"] == 0 and private["pending"] == 6
    assert servers["private"].requests == 0 and servers["private"].received == {}
    # The warning about the unchecked certificate: once, though the peer got several requests.
    log = proc.log()
    assert log.count(WARNING) == 1, log
    assert "insecure (https://127.0.0.1:" in log.split(WARNING)[0].splitlines()[-1]
    assert "InsecureRequestWarning" not in log

    trusted = echo(config, "trusted")
    assert trusted.returncode == 0, trusted.stderr
    assert f"QIDO-RS trusted ({servers['trusted'].url}): success" in trusted.stdout
    refused = echo(config, "private")
    assert refused.returncode == 1 and UNVERIFIED in refused.stderr, refused.stderr
    assert f"QIDO-RS private ({servers['private'].url}): failed: TLS:" in refused.stderr
    unchecked = echo(config, "insecure")
    assert unchecked.returncode == 0, unchecked.stderr
    assert f"QIDO-RS insecure ({servers['insecure'].url}): success" in unchecked.stdout
    assert unchecked.stderr.count(WARNING) == 1 and "InsecureRequestWarning" not in \
        unchecked.stderr
    assert servers["private"].requests == 0


def test_echo_says_which_ca_file_cannot_be_read(appliance, servers, tmp_path):
    """The loader does not read files (as for [dicom.tls]; `appliance config check` does): a
    CA bundle removed after the check is reported by the request that needs it."""
    missing = tmp_path / "gone-ca.pem"
    peer = {"name": "pacs", "protocol": "dicomweb", "url": servers["trusted"].url,
            "ca_certificates": str(missing)}
    _, _, config = appliance({"peers": [peer]})
    result = echo(config, "pacs")
    assert result.returncode == 1
    assert f"failed: ca_certificates {missing}: file does not exist" in result.stderr, \
        result.stderr
    missing.write_bytes(servers["trusted"].ca.read_bytes())  # put right: works at once
    again = echo(config, "pacs")
    assert again.returncode == 0 and "success" in again.stdout, again.stderr
