"""The box as a TLS client of its peers (`[[peers]] tls = true`, issue 15): forwarding to DCMTK
`storescp +tls`, `appliance echo`, the upstream worklist against our own engine's TLS port and
the DICOM printer driver against a Print SCP on TLS. The peer's certificate is checked against
`[dicom.tls] ca_certificates`; the peer checks ours (storescp requires a client certificate
by default)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.config.test_config_files import appliance_cli
from tests.conftest import DCMTK_ENV, free_port, wait_listening, write_config
from tests.forward.conftest import wait_until
from tests.storage.dicom_files import make_study, storescu


@pytest.fixture
def tls_storescp(tmp_path, pki):
    """Factory: DCMTK storescp on TLS with the certificate `server` (default modality, from
    the hospital CA), accepting clients whose certificate is from `client_ca`; (port, dir)."""
    procs: list[subprocess.Popen] = []

    def start(server: str = "modality", client_ca: str = "ca", aet: str = "PACS"):
        port = free_port()
        out = tmp_path / f"tls-storescp{len(procs)}"
        out.mkdir()
        procs.append(subprocess.Popen(
            ["storescp", "+tls", str(pki / f"{server}.key"), str(pki / f"{server}.pem"),
             "+cf", str(pki / f"{client_ca}.pem"), "-aet", aet, "-od", str(out), str(port)],
            env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_listening(port)
        return port, out

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def box_tls(pki: Path) -> dict:
    """The box's key material (`[dicom.tls]`), the listener itself off."""
    return {"certificate": str(pki / "box.pem"), "private_key": str(pki / "box.key"),
            "ca_certificates": str(pki / "ca.pem")}


def peer(port: int, tls: bool = True, name: str = "pacs") -> dict:
    return {"name": name, "ae_title": "PACS", "host": "127.0.0.1", "port": port, "tls": tls}


def echo_config(tmp_path: Path, pki: Path, port: int, tls: bool = True) -> Path:
    return write_config(tmp_path / "echo.toml", {"dicom": {"tls": box_tls(pki)},
                                                 "peers": [peer(port, tls)]})


def test_received_images_are_forwarded_to_a_tls_peer(appliance, pki, tls_storescp, tmp_path):
    pacs_port, received = tls_storescp()
    _, port, _ = appliance({
        "dicom": {"tls": box_tls(pki)},
        "peers": [peer(pacs_port)],
        "destinations": [{"peer": "pacs", "retry_initial": 0.2, "retry_max": 1.0}]})
    files = make_study(tmp_path / "study", 3)
    assert storescu(port, files).returncode == 0
    wait_until(lambda: len(list(received.iterdir())) == 3, 30, what="3 images at the TLS peer")
    sent = sorted(p.read_bytes()[-64:] for p in received.iterdir())
    assert sent == sorted(f.read_bytes()[-64:] for f in files)


def test_appliance_echo_reaches_a_tls_peer(pki, tls_storescp, tmp_path):
    port, _ = tls_storescp()
    result = appliance_cli("echo", "pacs", "--config", str(echo_config(tmp_path, pki, port)),
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"C-ECHO pacs PACS@127.0.0.1:{port} (TLS): success" in result.stdout


def test_a_tls_peer_with_a_certificate_from_another_ca_is_not_trusted(pki, tls_storescp,
                                                                       tmp_path):
    port, _ = tls_storescp(server="stranger")
    result = appliance_cli("echo", "pacs", "--config", str(echo_config(tmp_path, pki, port)),
                           cwd=tmp_path)
    assert result.returncode == 1
    assert "TLS: the peer's certificate was not accepted" in result.stderr


def test_a_tls_peer_that_does_not_accept_our_certificate_refuses(pki, tls_storescp, tmp_path):
    port, _ = tls_storescp(client_ca="other-ca")
    result = appliance_cli("echo", "pacs", "--config", str(echo_config(tmp_path, pki, port)),
                           cwd=tmp_path)
    assert result.returncode == 1
    assert "success" not in result.stdout


def test_echo_over_tls_to_a_plain_peer_says_so(pki, storescp, tmp_path):
    port = storescp("PACS")
    config = echo_config(tmp_path, pki, port, tls=False)
    plain = appliance_cli("echo", "pacs", "--config", str(config), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    forced = appliance_cli("echo", "127.0.0.1", str(port), "--aet", "PACS", "--tls",
                           "--config", str(config), cwd=tmp_path)
    assert forced.returncode == 1
    assert "TLS handshake failed" in forced.stderr


def test_a_tls_peer_needs_the_key_material(tmp_path):
    config = write_config(tmp_path / "bad.toml", {"peers": [peer(104)]})
    result = appliance_cli("config", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode != 0
    assert "peers[0] (pacs): tls = true needs [dicom.tls] certificate, private_key, " \
        "ca_certificates" in result.stderr


def test_config_check_reads_the_files_a_tls_peer_needs(pki, tmp_path):
    from tests.pki import reissue

    reissue(pki, "expired", "edgebox", "ca", days=-2)
    tls = {**box_tls(pki), "certificate": str(pki / "expired.pem"),
           "private_key": str(pki / "expired.key")}
    config = write_config(tmp_path / "expired.toml", {"dicom": {"tls": tls},
                                                      "peers": [peer(104)]})
    result = appliance_cli("config", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode != 0
    assert "used by peer pacs" in result.stderr and "expired.pem" in result.stderr
    assert "expired" in result.stderr
