"""DICOM over TLS on the engine's second port (issue 15), with DCMTK's echoscu/storescu as the
modality: a client certificate from the configured CA is accepted, none or one from another
CA is refused in the handshake, a plain client on the TLS port gets nothing, and plain and TLS
associations are served at the same time."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appliance.dicom.engine import EngineTls
from tests.conftest import DCMTK_ENV
from tests.pki import dcmtk_tls, make_pki
from tests.storage.dicom_files import make_study


@pytest.fixture
def pki(tmp_path) -> Path:
    """The hospital CA, the box's certificate and a modality's, both from that CA, and a
    modality certificate from a stranger's CA."""
    directory = make_pki(tmp_path / "pki", {"box": "edgebox", "modality": "CT1"})
    return make_pki(directory, {"stranger": "CT9"}, ca="other-ca", ca_name="Other CA")


def tls_engine(engine, pki: Path, **tls):
    settings = EngineTls(port=0, certificate=str(pki / "box.pem"),
                         private_key=str(pki / "box.key"), ca_certificates=str(pki / "ca.pem"),
                         **tls)
    return engine(tls=settings)


def echoscu(port: int, *tls: str) -> subprocess.CompletedProcess:
    return subprocess.run(["echoscu", "-aec", "EDGEBOX", *tls, "127.0.0.1", str(port)],
                          capture_output=True, text=True, env=DCMTK_ENV, timeout=60)


def test_a_modality_with_a_certificate_from_the_ca_is_served(engine, pki):
    dicom_engine, _ = tls_engine(engine, pki)
    assert dicom_engine.tls_port > 0 and dicom_engine.tls_port != dicom_engine.port
    result = echoscu(dicom_engine.tls_port, *dcmtk_tls(pki, "modality"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("client", ["no certificate", "another CA's", "plain DICOM"])
def test_other_clients_are_refused_on_the_tls_port(engine, pki, client):
    dicom_engine, _ = tls_engine(engine, pki)
    args = {"no certificate": ["+tla", "+cf", str(pki / "ca.pem")],
            "another CA's": dcmtk_tls(pki, "stranger"),
            "plain DICOM": []}[client]
    result = echoscu(dicom_engine.tls_port, *args)
    assert result.returncode != 0, result.stdout
    # and the port still serves the next, good client
    good = echoscu(dicom_engine.tls_port, *dcmtk_tls(pki, "modality"))
    assert good.returncode == 0, good.stderr


def test_plain_and_tls_at_once_store_bit_identical(engine, pki, tmp_path):
    dicom_engine, receiver = tls_engine(engine, pki)
    files = make_study(tmp_path / "study", 4)
    tls = subprocess.Popen(["storescu", "-aec", "EDGEBOX", *dcmtk_tls(pki, "modality"),
                            "127.0.0.1", str(dicom_engine.tls_port), *map(str, files[:2])],
                           env=DCMTK_ENV, stderr=subprocess.PIPE, text=True)
    plain = subprocess.run(["storescu", "-aec", "EDGEBOX", "127.0.0.1", str(dicom_engine.port),
                            *map(str, files[2:])], env=DCMTK_ENV, capture_output=True,
                           text=True, timeout=60)
    assert tls.wait(60) == 0, tls.stderr.read()
    assert plain.returncode == 0, plain.stderr
    assert len(receiver.images) == 4


def test_the_tls_files_are_checked_at_start(engine, pki):
    (pki / "box.key").write_bytes((pki / "modality.key").read_bytes())
    with pytest.raises(RuntimeError, match="does not belong to the certificate"):
        tls_engine(engine, pki)


def test_appliance_run_serves_tls_beside_the_plain_port(pki, tmp_path):
    from tests.conftest import ApplianceProcess, free_port, write_config

    port, tls_port = free_port(), free_port()
    config = write_config(tmp_path / "appliance.toml", {
        "device": {"data_dir": str(tmp_path / "data")},
        "dicom": {"port": port, "bind": "127.0.0.1",
                  "tls": {"enabled": True, "port": tls_port,
                          "certificate": str(pki / "box.pem"),
                          "private_key": str(pki / "box.key"),
                          "ca_certificates": str(pki / "ca.pem")}},
        "web": {"bind": "127.0.0.1", "port": free_port()}})
    appliance = ApplianceProcess(config, tmp_path / "appliance.log")
    try:
        appliance.wait_ready()
        good = echoscu(tls_port, *dcmtk_tls(pki, "modality"))
        assert good.returncode == 0, good.stderr
        assert echoscu(port).returncode == 0
        assert echoscu(tls_port, "+tla", "+cf", str(pki / "ca.pem")).returncode != 0
    finally:
        appliance.stop()
    log = (tmp_path / "appliance.log").read_text()
    assert f"TLS on port {tls_port}" in log
    assert "(TLS, /CN=CT1)" in log  # the association line names the client certificate
